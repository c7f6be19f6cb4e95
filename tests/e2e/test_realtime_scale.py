"""Realtime at capacity, end to end: one worker taking four sessions, refusing a fifth,
holding a client that sends faster than real time without losing its audio, and ending a
session whose decoder falls behind past the bound (`lag_exceeded`).

Gateway + session router + one realtime worker (tiny.en) as processes. The worker's
configured capacity is 4, what bench/realtime_latency.py measured one 2-core worker to
sustain; it measures its own load as it runs, which may lower what it advertises, never
raise it. Latency is not asserted here (bench/ measures it); completeness and WER are.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
import websockets
from harness import API_KEY, ROOT, reference, wer
from support import REDIS_URL, create_database, drop_database, free_port
from test_realtime import AUTH, RealtimeFleet, Received, collect, pcm16, refused, sdk_stream

from dalston.fleet import Fleet, gateway_service, realtime_worker_service, session_router_service, wait_http, with_env
from shared import model_registry

pytestmark = pytest.mark.e2e
REDIS_DB = 12  # the e2e modules run one after another; each fleet flushes its database
CAPACITY = 4
# tiny.en under a name of its own, served only by the worker the lag test starts, so that
# test's sessions reach that worker and no other.
LAGGING = "lagging-tiny.en"


@dataclass
class ScaleFleet(RealtimeFleet):
    worker_metrics_url: str = ""


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[ScaleFleet]:
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port, worker_port = free_port(), free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("realtime-scale")),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_REALTIME_WORKER_CAPACITY": str(CAPACITY),
        "DALSTON_REALTIME_HEARTBEAT_INTERVAL_S": "1",
        "DALSTON_REALTIME_HEARTBEAT_TTL_S": "3",
        "DALSTON_REALTIME_RETAIN_AUDIO": "false",
        # The gateway refuses model names it does not know: it must know the lag test's.
        "DALSTON_MODELS": json.dumps({LAGGING: model_registry.available()["tiny.en"].source}),
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    services = [gateway_service(port), session_router_service(), realtime_worker_service(worker_port)]
    fleet = Fleet(services, env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        running = ScaleFleet(
            fleet, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", redis_url, f"http://127.0.0.1:{worker_port}/metrics"
        )
        running.wait_status(lambda s: s["status"] == "available" and s["capacity"] == CAPACITY, timeout=120)
        yield running
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()


async def test_four_elevenlabs_sessions_at_once_and_a_fifth_refused(rt: ScaleFleet) -> None:
    audio = pcm16("speech_en.wav", trailing_silence_s=0.5)
    sessions = [
        asyncio.create_task(sdk_stream(rt, audio, strategy="manual", timestamps=False, commit=True)) for _ in range(CAPACITY)
    ]
    # The fifth arrives once the four hold their slots: refused before it starts, not served slowly.
    await asyncio.to_thread(rt.wait_status, lambda s: s["active_sessions"] == CAPACITY, 60)
    fifth = await refused(f"{rt.ws_url}/v1/audio/transcriptions/stream?language=en", AUTH)
    assert fifth.messages[0]["type"] == "error" and fifth.messages[0]["code"] == "no_capacity", fifth.messages
    assert fifth.close_code == 1013 and not [m for m in fifth.messages if m["type"] == "session.begin"]

    for events in await asyncio.gather(*sessions):
        assert not events["error"], events["error"]
        assert len(events["committed"]) == 1, events
        text = events["committed"][0]["text"]
        score = wer(reference("speech_en.txt"), text)
        assert score <= 0.35, f"WER {score:.2f}: {text!r}"

    # The worker's Prometheus metrics saw them: four finals' latencies, decodes by kind.
    metrics = httpx.get(rt.worker_metrics_url, timeout=10).text
    finals = re.search(r"^dalston_realtime_final_latency_seconds_count (\S+)$", metrics, re.M)
    assert finals and float(finals[1]) >= CAPACITY, metrics
    assert 'dalston_realtime_decode_seconds_count{kind="final"}' in metrics and "dalston_realtime_capacity" in metrics


async def test_a_client_faster_than_real_time_is_held_without_losing_audio(rt: ScaleFleet) -> None:
    audio = pcm16("long_en.wav", trailing_silence_s=1.0)
    got = Received()
    url = f"{rt.ws_url}/v1/audio/transcriptions/stream?language=en&interim_results=false"
    async with websockets.connect(url, additional_headers=AUTH) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        step = 16000 * 2 // 2  # 0.5 s chunks, sent as fast as the connection takes them
        for i in range(0, len(audio), step):
            await ws.send(audio[i : i + step])
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 300)
    assert got.close_code == 1000, got.messages[-3:]
    assert not got.of("error"), got.of("error")
    assert got.of("lag", key="code"), "the worker never said it was holding the client back"
    stats = got.of("session.end")[0]["stats"]
    assert stats["audio_seconds"] == pytest.approx(len(audio) / 32000, abs=0.01)  # every sample was processed
    assert stats["held_seconds"] > 0
    text = " ".join(m["text"] for m in got.of("transcript.final"))
    score = wer(reference("long_en.txt"), text)
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"


async def test_a_decoder_that_falls_behind_past_the_bound_ends_the_session(rt: ScaleFleet) -> None:
    """`lag_exceeded` on a real connection, with a real model and real audio. The one change
    is the bound, scaled down from 20 s to 0.1 s: less than one real final decode takes
    (tiny.en, beam 5, a 10 s segment: about a second on a 2-core machine). The client sends
    long_en.wav faster than real time; at the first pause that ends a segment the session
    waits for that segment's final, the backlog passes the hold bound (2 s, unchanged) so
    the session stops reading, and the audio it holds waits on a decoder that makes no
    progress for longer than the bound. Freezing the worker instead (SIGSTOP) would stop its
    socket too: the gateway would see a dead worker, not this."""
    worker = with_env(
        realtime_worker_service(free_port(), "realtime-worker-lagging", "--worker-id", "lagging", "--models", LAGGING),
        DALSTON_REALTIME_LAG_MAX_S="0.1",
    )
    rt.fleet.add(worker)
    try:
        await asyncio.to_thread(
            rt.wait_status, lambda s: any(w["id"] == "lagging" and w["status"] == "ready" for w in s["workers"]), 120
        )
        got = Received()
        url = f"{rt.ws_url}/v1/audio/transcriptions/stream?model={LAGGING}&language=en&interim_results=false"
        async with websockets.connect(url, additional_headers=AUTH) as ws:
            receiver = asyncio.create_task(collect(ws, got))
            step = 16000 * 2 // 2  # 0.5 s chunks, as fast as the connection takes them
            audio = pcm16("long_en.wav")
            try:
                for i in range(0, len(audio), step):
                    await ws.send(audio[i : i + step])
                await ws.send(json.dumps({"type": "end"}))  # reached only if the session kept up
            except websockets.ConnectionClosed:
                pass  # closed under the sender: what this test is about
            await asyncio.wait_for(receiver, 120)
        kinds = [m.get("code", m["type"]) for m in got.messages]
        print(f"\nended after {kinds.count('transcript.final')} finals with {got.messages[-1]}, close {got.close_code}")
        assert kinds[0] == "session.begin" and "lag" in kinds, kinds
        error = got.messages[-1]
        assert (error["type"], error["code"], error["fatal"]) == ("error", "lag_exceeded", True), got.messages
        assert re.fullmatch(r"the transcriber made no progress for 0\.1 s with \d+\.\d s of audio waiting", error["message"])
        assert got.close_code == 1013
        # The session's history says why it ended.
        session_id = got.messages[0]["session_id"]
        response = httpx.get(f"{rt.base_url}/v1/realtime/sessions/{session_id}", headers=AUTH, timeout=10)
        session = response.json()
        assert session["status"] == "failed" and "lag_exceeded" in session["error"], session
    finally:
        rt.fleet.kill(worker.name, signal.SIGTERM)  # it deregisters: the pool is as it was
