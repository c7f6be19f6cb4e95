"""Realtime at capacity, end to end: one worker taking four sessions, refusing a fifth, and
holding a client that sends faster than real time without losing its audio.

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

from dalston.fleet import Fleet, gateway_service, realtime_worker_service, session_router_service, wait_http

pytestmark = pytest.mark.e2e
REDIS_DB = 12  # the e2e modules run one after another; each fleet flushes its database
CAPACITY = 4


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
