"""Realtime latency: one worker, fixtures streamed at real-time pace (100 ms chunks).

    .venv/bin/python bench/realtime_latency.py [--sessions 1,2,4] [--fixture speech_en.wav]

Starts a realtime worker process (its own Redis DB index) and streams the fixture plus a
second of silence over the native protocol straight to the worker, with N sessions at
once. Reports, per N:
  (a) final latency: from the moment the endpoint became detectable (arrival of the chunk
      that completes the endpoint silence, measured by the worker) or the client's flush
      (measured here, from sending `flush` to receiving the final) to the final message;
  (b) partial cadence: time between consecutive partials of a session;
and the worst lag (audio received but not yet processed). A worker sustains N sessions
when its lag stays under a second. The bare model's final decode of the same utterance
(same model, beam and word timestamps, in this process before the worker starts) is the
yardstick: with early decoding the endpoint latency can be well under it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soxr
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime_worker.asr import FasterWhisperBackend  # noqa: E402
from shared.audio import read_wav  # noqa: E402
from shared.settings import Settings  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REDIS_DB = 7


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:7.0f}"


async def stream(url: str, pcm: bytes, query: str, flush: bool) -> dict:
    finals: list[float] = []
    partial_times: list[float] = []
    stats: dict = {}
    flush_sent: list[float] = []
    async with websockets.connect(f"{url}/session?{query}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                now = time.monotonic()
                if msg["type"] == "transcript.partial":
                    partial_times.append(now)
                elif msg["type"] == "transcript.final":
                    finals.append((now - flush_sent[0]) * 1000 if flush and msg["reason"] == "commit" else msg["latency_ms"])
                elif msg["type"] == "session.end":
                    stats.update(msg["stats"])
                elif msg["type"] in ("error", "warning"):
                    print("  !", msg, file=sys.stderr)

        receiver = asyncio.create_task(receive())
        step = 3200
        started = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), step)):
            await ws.send(pcm[offset : offset + step])
            # Pace by the clock, not by sleeps, so sending never drifts behind real time.
            await asyncio.sleep(max(0.0, started + (i + 1) * 0.1 - time.monotonic()))
        if flush:
            flush_sent.append(time.monotonic())
            await ws.send(json.dumps({"type": "flush"}))
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 120)
    cadence = [b - a for a, b in zip(partial_times, partial_times[1:])]
    return {"finals": finals, "cadence": cadence, "max_lag": stats.get("max_lag_seconds", 0.0)}


async def run(url: str, pcm: bytes, sessions: int, query: str, flush: bool) -> dict:
    results = await asyncio.gather(*(stream(url, pcm, query, flush) for _ in range(sessions)))
    finals = [v for r in results for v in r["finals"]]
    cadence = [v * 1000 for r in results for v in r["cadence"]]
    return {"finals": finals, "cadence": cadence, "max_lag": max(r["max_lag"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,2,4")
    parser.add_argument("--fixture", default="speech_en.wav")
    parser.add_argument("--port", type=int, default=9871)
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]

    audio, rate = read_wav(FIXTURES / args.fixture)
    audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    settings = Settings(whisper_cpu_threads=2)
    backend = FasterWhisperBackend("tiny.en", settings)
    bare = []
    for _ in range(3):
        began = time.perf_counter()
        backend.decode(audio, final=True, words=True, language="en", prompt=None)
        bare.append((time.perf_counter() - began) * 1000)
    del backend
    pcm = (np.clip(np.concatenate([audio, np.zeros(16000, np.float32)]), -1, 1) * 32767).astype("<i2").tobytes()

    env = {
        **os.environ,
        "DALSTON_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_REALTIME_WORKER_CAPACITY": str(max(counts)),
        "DALSTON_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "realtime_worker", "--port", str(args.port), "--worker-id", "bench"], cwd=ROOT, env=env
    )
    url = f"ws://127.0.0.1:{args.port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{args.port}/health", timeout=1).json()["status"] == "ready":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not start")
            time.sleep(0.2)
        print(
            f"fixture {args.fixture} ({audio.size / 16000:.1f} s + 1 s silence), tiny.en int8, beam {settings.whisper_beam_size}, 2 threads"
        )
        print(f"bare final decode of the whole utterance (words): median {statistics.median(bare):.0f} ms")
        print(f"{'mode':<8} {'N':>2} {'finals':>6} {'p50 ms':>7} {'p95 ms':>7} {'cad p50':>7} {'cad p95':>7} {'max lag s':>9}")
        sustained = 0
        runs = [("vad", n, "vad=true&language=en&endpoint_ms=500", False) for n in counts]
        runs.append(("commit", 1, "vad=false&language=en", True))
        for mode, n, query, flush in runs:
            r = asyncio.run(run(url, pcm, n, query, flush))
            print(
                f"{mode:<8} {n:>2} {len(r['finals']):>6} {fmt(pct(r['finals'], 0.5))} {fmt(pct(r['finals'], 0.95))} "
                f"{fmt(pct(r['cadence'], 0.5))} {fmt(pct(r['cadence'], 0.95))} {r['max_lag']:>9.2f}"
            )
            if mode == "vad" and r["max_lag"] < 1.0:
                sustained = max(sustained, n)
        print(f"most sessions sustained without lag growing (max lag < 1 s): {sustained} of those tried")
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    main()
