"""Realtime latency and the sessions one worker sustains, against a baseline worker.

    .venv/bin/python -m bench.realtime_latency [--sessions 1,2,4,6,8] [--utterances 20]
        [--baseline REV] [--lockstep] [--model tiny.en]

Utterances are cut from the English fixtures at their pauses (1–8 s of speech each). Every
session streams its own seeded sequence of `--utterances` of them with 0.8–1.6 s pauses, at
real-time pace in 100 ms chunks, over the native protocol straight to a worker (its own Redis
DB). Sessions start at staggered offsets within the first 2 s, as real callers do;
`--lockstep` starts them together (the worst case). For each N:
  endpoint→final  the worker's latency_ms (from the chunk that completed the endpoint silence);
  commit→final    a second run in manual mode (vad=false), flush sent after each utterance:
                  from sending `flush` to receiving the final, measured here;
  cadence         time between consecutive partials of one utterance;
  max lag         the worst backlog of received, unprocessed audio in any session;
  shed            partials skipped (behind, or a final waiting; from session.end stats).
N is sustained when max lag stays under 1 s. With `--baseline REV` the same runs go to a
worker started from that commit (a git worktree, same venv) first, and ratios new/baseline
are printed: the gain of this commit's scheduler over the previous one, same input, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import soxr
import websockets

from shared.audio import read_wav

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SOURCES = ["speech_en.wav", "short_en.wav", "long_en.wav", "conversation_en.wav", "pii_call_en.wav", "pii_call2_en.wav"]
REDIS_DB = 7
TARGET_LOAD = 0.5  # DALSTON_REALTIME_TARGET_LOAD's default
RATE = 16_000
CHUNK = 1600  # 100 ms


def utterances() -> list[np.ndarray]:
    """Speech pieces of 1–8 s, cut where the fixtures pause for 0.3 s or more."""
    pieces: list[np.ndarray] = []
    for name in SOURCES:
        audio, rate = read_wav(FIXTURES / name)
        audio = soxr.resample(audio if audio.ndim == 1 else audio.mean(axis=1), rate, RATE).astype(np.float32)
        frame = RATE // 50
        energy = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
        quiet = energy < max(1e-4, 0.05 * np.percentile(energy, 95))
        start, silent = None, 0
        for i, q in enumerate(quiet):
            if not q:
                start = i if start is None else start
                silent = 0
            elif start is not None:
                silent += 1
                if silent >= 15:
                    end = i - silent + 1
                    if (end - start) * frame >= RATE:
                        pieces.append(audio[start * frame : min(end * frame, start * frame + 8 * RATE)])
                    start, silent = None, 0
    return pieces


def session_audio(pieces: list[np.ndarray], count: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """`count` utterances with pauses; also the sample at which each utterance ends."""
    rng = random.Random(seed)
    parts: list[np.ndarray] = [np.zeros(int(0.3 * RATE), np.float32)]
    ends: list[int] = []
    for _ in range(count):
        parts.append(rng.choice(pieces))
        ends.append(sum(len(p) for p in parts))
        parts.append(np.zeros(int(rng.uniform(0.8, 1.6) * RATE), np.float32))
    return np.concatenate(parts), ends


@dataclass
class Result:
    finals: list[float] = field(default_factory=list)
    cadence: list[float] = field(default_factory=list)
    max_lag: float = 0.0
    shed: int | None = None
    partials: int = 0
    final_load: float | None = None  # the worker's measured decoder seconds per session-second


async def stream(url: str, audio: np.ndarray, ends: list[int], query: str, manual: bool, delay: float) -> Result:
    await asyncio.sleep(delay)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    result = Result()
    flushes: list[float] = []
    last_partial: dict[int, float] = {}
    async with websockets.connect(f"{url}/session?{query}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                now = time.monotonic()
                if msg["type"] == "transcript.partial":
                    result.partials += 1
                    previous = last_partial.get(msg["utterance_id"])
                    if previous is not None:
                        result.cadence.append((now - previous) * 1000)
                    last_partial[msg["utterance_id"]] = now
                elif msg["type"] == "transcript.final":
                    if manual and msg["reason"] == "commit" and flushes:
                        result.finals.append((now - flushes.pop(0)) * 1000)
                    elif not manual and msg["reason"] == "vad":
                        result.finals.append(msg["latency_ms"])
                elif msg["type"] == "session.end":
                    result.max_lag = msg["stats"]["max_lag_seconds"]
                    result.shed = msg["stats"].get("partials_shed")

        receiver = asyncio.create_task(receive())
        began = time.monotonic()
        pending = [e + int(0.3 * RATE) for e in ends]  # flush 0.3 s after each utterance
        for i, offset in enumerate(range(0, len(pcm), CHUNK * 2)):
            await ws.send(pcm[offset : offset + CHUNK * 2])
            sent = (offset // 2) + CHUNK
            if manual and pending and sent >= pending[0]:
                pending.pop(0)
                flushes.append(time.monotonic())
                await ws.send(json.dumps({"type": "flush"}))
            # Paced by the clock, so sending never drifts behind real time.
            await asyncio.sleep(max(0.0, began + (i + 1) * 0.1 - time.monotonic()))
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 300)
    return result


async def run(url: str, sessions: list[tuple[np.ndarray, list[int]]], query: str, manual: bool, lockstep: bool) -> Result:
    delays = [0.0 if lockstep else i * 2.0 / max(1, len(sessions)) for i in range(len(sessions))]
    results = await asyncio.gather(*(stream(url, a, e, query, manual, d) for (a, e), d in zip(sessions, delays)))
    sheds = [r.shed for r in results if r.shed is not None]
    return Result(
        finals=[v for r in results for v in r.finals],
        cadence=[v for r in results for v in r.cadence],
        max_lag=max(r.max_lag for r in results),
        shed=sum(sheds) if sheds else None,
        partials=sum(r.partials for r in results),
    )


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_worker(cwd: Path, port: int, capacity: int, model: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(cwd),
        "DALSTON_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_REALTIME_WORKER_CAPACITY": str(capacity),
        "DALSTON_REALTIME_CAPACITY_AUTO": "false",  # the bench decides how many sessions to send
        "DALSTON_REALTIME_WORKER_MODELS": json.dumps([model]),
        "DALSTON_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "realtime_worker", "--port", str(port), "--worker-id", f"bench-{port}"], cwd=cwd, env=env
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["status"] == "ready":
                return worker
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.terminate()
            raise SystemExit(f"the worker in {cwd} did not start")
        time.sleep(0.3)


def final_load(port: int) -> float | None:
    """`dalston_realtime_final_load` from the worker's /metrics (absent before this commit's worker)."""
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith("dalston_realtime_final_load "):
            return float(line.split()[1])
    return None


def measure(
    label: str, cwd: Path, port: int, args: argparse.Namespace, pieces: list[np.ndarray]
) -> dict[tuple[str, int], Result]:
    counts = [int(n) for n in args.sessions.split(",")]
    worker = start_worker(cwd, port, max(counts), args.model)
    url = f"ws://127.0.0.1:{port}"
    out: dict[tuple[str, int], Result] = {}
    try:
        for n in counts:
            sessions = [session_audio(pieces, args.utterances, seed) for seed in range(n)]
            vad = f"vad=true&language=en&endpoint_ms=500&model={args.model}"
            out[("vad", n)] = asyncio.run(run(url, sessions, vad, False, args.lockstep))
            out[("commit", n)] = asyncio.run(run(url, sessions, f"vad=false&language=en&model={args.model}", True, args.lockstep))
            r = out[("vad", n)]
            r.final_load = final_load(port)
            print(f"  [{label}] N={n}: {len(r.finals)} finals, max lag {r.max_lag:.2f} s", file=sys.stderr)
            if r.max_lag >= 3.0:
                break  # lag keeps growing: larger N only grow it further
    finally:
        worker.terminate()
        worker.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,2,4,6,8")
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--baseline", help="a commit to compare with (its worker runs from a git worktree)")
    parser.add_argument("--lockstep", action="store_true", help="start every session at once (worst case)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--port", type=int, default=9871)
    args = parser.parse_args()
    pieces = utterances()
    print(f"{len(pieces)} utterances cut from the fixtures; {args.utterances} per session; model {args.model}, 2 threads")

    results: dict[str, dict[tuple[str, int], Result]] = {}
    if args.baseline:
        with tempfile.TemporaryDirectory() as scratch:
            tree = Path(scratch) / "baseline"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), args.baseline], cwd=ROOT, check=True, capture_output=True
            )
            try:
                results["baseline"] = measure("baseline", tree, args.port + 1, args, pieces)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    results["this commit"] = measure("this commit", ROOT, args.port, args, pieces)

    def cell(value: float | None) -> str:
        return "      -" if value is None else f"{value:7.0f}"

    print(
        f"\n{'worker':<12} {'N':>2} {'finals':>6} {'end→fin p50':>11} {'p95':>7} {'commit→fin p50':>14} {'p95':>7}"
        f" {'cad p50':>7} {'cad p95':>7} {'max lag s':>9} {'shed':>5}"
    )
    for label, by_run in results.items():
        sustained = 0
        for (mode, n), vad in sorted(by_run.items(), key=lambda kv: kv[0][1]):
            if mode != "vad":
                continue
            commit = by_run[("commit", n)]
            print(
                f"{label:<12} {n:>2} {len(vad.finals):>6} {cell(pct(vad.finals, 0.5)):>11} {cell(pct(vad.finals, 0.95))}"
                f" {cell(pct(commit.finals, 0.5)):>14} {cell(pct(commit.finals, 0.95))}"
                f" {cell(pct(vad.cadence, 0.5))} {cell(pct(vad.cadence, 0.95))} {vad.max_lag:>9.2f}"
                f" {'-' if vad.shed is None else vad.shed:>5}"
            )
            if vad.max_lag < 1.0:
                sustained = max(sustained, n)
        load = by_run[("vad", max(n for _, n in by_run))].final_load
        auto = f"{math.floor(TARGET_LOAD / load)}" if load else "-"
        print(
            f"{label:<12} sustained (max lag < 1 s): N = {sustained}; capacity the worker measures (target {TARGET_LOAD}): {auto}"
        )
    if "baseline" in results:
        print("\nratios this commit / baseline (< 1 is better): endpoint→final p95, commit→final p95, max lag")
        for key, new in sorted(results["this commit"].items(), key=lambda kv: kv[0][1]):
            old = results["baseline"].get(key)
            if key[0] != "vad" or old is None:
                continue
            n = key[1]
            ratios = []
            for a, b in (
                (pct(new.finals, 0.95), pct(old.finals, 0.95)),
                (pct(results["this commit"][("commit", n)].finals, 0.95), pct(results["baseline"][("commit", n)].finals, 0.95)),
                (new.max_lag, old.max_lag),
            ):
                ratios.append("-" if not a or not b else f"{a / b:.2f}")
            print(f"  N={n}: {'  '.join(ratios)}")


if __name__ == "__main__":
    main()
