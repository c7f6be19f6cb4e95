"""Contract tests: the official `openai` SDK's realtime client, unmodified, in transcription
mode against a running gateway, session router and realtime worker.

Audio is streamed at real-time pace in 100 ms chunks; the checks are on content (word
error rate on the fixture) and on the events' sequence and item ids.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import soxr
import websockets
from harness import API_KEY, ROOT, reference, wer
from openai import AsyncOpenAI
from support import FIXTURES, REDIS_URL, create_database, drop_database, free_port

from dalston.fleet import Fleet, gateway_service, realtime_worker_service, session_router_service, wait_http
from shared.audio import read_wav

pytestmark = pytest.mark.e2e

# A Redis index of our own, apart from the other e2e fleets.
REDIS_DB = 14
MAX_WER = 0.35
TRANSCRIPTION = {"intent": "transcription"}


@dataclass
class Fleet1:
    fleet: Fleet
    base_url: str


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[Fleet1]:
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("openai-realtime")),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_REALTIME_HEARTBEAT_INTERVAL_S": "1",
        "DALSTON_REALTIME_ROUTER_INTERVAL_S": "1",
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    services = [gateway_service(port), session_router_service(), realtime_worker_service(free_port())]
    fleet = Fleet(services, env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/health", timeout=60)
        deadline = time.monotonic() + 120
        while not _worker_ready(base_url):
            assert time.monotonic() < deadline, "the realtime worker never became ready"
            time.sleep(0.5)
        yield Fleet1(fleet, base_url)
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()


def _worker_ready(base_url: str) -> bool:
    response = httpx.get(f"{base_url}/v1/realtime/status", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    return response.status_code == 200 and any(w["status"] == "ready" for w in response.json()["workers"])


def client(rt: Fleet1, key: str = API_KEY) -> AsyncOpenAI:
    # The beta realtime client always dials wss:// from base_url; websocket_base_url is
    # the SDK's own option for a plain ws:// server (the GA client derives ws:// itself).
    ws_base = rt.base_url.replace("http://", "ws://")
    return AsyncOpenAI(base_url=f"{rt.base_url}/v1", websocket_base_url=f"{ws_base}/v1", api_key=key)


# -- audio ------------------------------------------------------------------------------


def fixture_audio(name: str, rate: int, trailing_silence_s: float = 0.0) -> np.ndarray:
    audio, source_rate = read_wav(FIXTURES / name)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = soxr.resample(audio, source_rate, rate)
    return np.concatenate([audio, np.zeros(int(trailing_silence_s * rate), dtype=audio.dtype)])


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def ulaw(audio: np.ndarray) -> bytes:
    """G.711 μ-law encoding of float samples."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int32)
    sign = (pcm < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


async def stream(conn: Any, data: bytes, bytes_per_100ms: int) -> None:
    """Append `data` in 100 ms chunks at real-time pace."""
    for i in range(0, len(data), bytes_per_100ms):
        await conn.input_audio_buffer.append(audio=base64.b64encode(data[i : i + bytes_per_100ms]).decode())
        await asyncio.sleep(0.1)


# -- events -----------------------------------------------------------------------------


class Events:
    """Every event the SDK parsed, in order."""

    def __init__(self) -> None:
        self.all: list[Any] = []

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.all if e.type == kind]

    def index(self, event: Any) -> int:
        return self.all.index(event)

    async def wait(self, done, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            assert time.monotonic() < deadline, f"timed out; events: {[e.type for e in self.all]}"
            await asyncio.sleep(0.1)


@asynccontextmanager
async def session(conn: Any) -> AsyncIterator[Events]:
    events = Events()

    async def receive() -> None:
        async for event in conn:
            events.all.append(event)

    receiver = asyncio.create_task(receive())
    try:
        await events.wait(lambda ev: ev.of("session.created") or ev.of("transcription_session.created"), 30)
        yield events
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


def completed(events: Events) -> list[Any]:
    return events.of("conversation.item.input_audio_transcription.completed")


def check_items(events: Events, added: str) -> str:
    """Each committed item is announced, then completed, with the same id; deltas of an
    item concatenate to its transcript whenever they are consistent with it."""
    committed = events.of("input_audio_buffer.committed")
    done = completed(events)
    agreeing = 0
    assert [c.item_id for c in committed] == [c.item_id for c in done]
    assert [a.item.id for a in events.of(added)] == [c.item_id for c in committed]
    assert [c.previous_item_id for c in committed] == [None, *(c.item_id for c in committed[:-1])]
    for item in done:
        deltas = "".join(
            d.delta
            for d in events.of("conversation.item.input_audio_transcription.delta")
            if d.item_id == item.item_id and d.delta
        )
        # Deltas that agree with the final add up to it (the final sends what is left).
        assert deltas == item.transcript or not item.transcript.startswith(deltas), (deltas, item.transcript)
        agreeing += deltas == item.transcript
        assert item.content_index == 0 and item.usage.type == "duration" and item.usage.seconds > 0
    n_deltas = len(events.of("conversation.item.input_audio_transcription.delta"))
    return f"{n_deltas} deltas, {agreeing}/{len(done)} items' deltas add up to the transcript"


# -- tests ------------------------------------------------------------------------------


async def test_server_vad_turns(rt: Fleet1) -> None:
    # Two recordings with a pause between them: at least two turns.
    first = fixture_audio("short_en.wav", 24_000, trailing_silence_s=1.0)
    audio = pcm16(np.concatenate([first, fixture_audio("speech_en.wav", 24_000, trailing_silence_s=1.5)]))
    async with client(rt).realtime.connect(extra_query=TRANSCRIPTION) as conn, session(conn) as events:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "prefix_padding_ms": 300,
                            "silence_duration_ms": 600,
                        },
                    }
                },
            }
        )
        await events.wait(lambda ev: ev.of("session.updated"))
        await stream(conn, audio, 4800)

        def settled(ev: Events) -> bool:
            started, stopped, done = (
                ev.of("input_audio_buffer.speech_started"),
                ev.of("input_audio_buffer.speech_stopped"),
                completed(ev),
            )
            return bool(done) and len(started) == len(stopped) and ev.index(done[-1]) > ev.index(stopped[-1])

        await events.wait(settled)
    assert not events.of("error"), events.of("error")
    updated = events.of("session.updated")[0].session
    assert updated.type == "transcription" and updated.audio.input.turn_detection.silence_duration_ms == 600
    deltas = check_items(events, "conversation.item.added")
    assert len(events.of("conversation.item.done")) == len(completed(events))
    assert events.of("input_audio_buffer.speech_started")[0].audio_start_ms < 2000
    assert len(completed(events)) >= 2
    text = " ".join(c.transcript for c in completed(events))
    score = wer(reference("short_en.txt") + " " + reference("speech_en.txt"), text)
    print(f"server VAD: {len(completed(events))} turns, {deltas}, WER {score:.3f}: {text!r}")
    assert score <= MAX_WER, f"WER {score:.2f}: {text!r}"


async def test_manual_commit(rt: Fleet1) -> None:
    audio = pcm16(fixture_audio("speech_en.wav", 24_000))
    async with client(rt).realtime.connect(extra_query=TRANSCRIPTION) as conn, session(conn) as events:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
                "include": ["item.input_audio_transcription.logprobs"],
            }
        )
        await stream(conn, audio, 4800)
        await conn.input_audio_buffer.commit()
        await events.wait(lambda ev: completed(ev))
        # Nothing more in the buffer: a second commit is an error, and the session goes on.
        await conn.input_audio_buffer.commit(event_id="evt_empty")
        await events.wait(lambda ev: ev.of("error"))
    (error,) = events.of("error")
    assert error.error.code == "input_audio_buffer_commit_empty" and error.error.event_id == "evt_empty"
    assert error.error.type == "invalid_request_error"
    assert events.of("session.updated")[0].session.audio.input.turn_detection is None
    assert not events.of("input_audio_buffer.speech_started"), "no VAD events in manual mode"
    deltas = check_items(events, "conversation.item.added")
    (done,) = completed(events)
    assert done.logprobs and all(lp.logprob <= 0 for lp in done.logprobs)
    assert "".join(lp.token for lp in done.logprobs).split() == done.transcript.split()
    assert events.of("conversation.item.input_audio_transcription.delta"), "no deltas"
    score = wer(reference("speech_en.txt"), done.transcript)
    print(f"manual commit: {deltas}, WER {score:.3f}: {done.transcript!r}")
    assert score <= MAX_WER, f"WER {score:.2f}: {done.transcript!r}"


async def test_beta_client_g711_ulaw(rt: Fleet1) -> None:
    audio = ulaw(fixture_audio("short_en.wav", 8_000))
    connect = client(rt).beta.realtime.connect(model="gpt-4o-transcribe", extra_query=TRANSCRIPTION)
    async with connect as conn, session(conn) as events:
        await conn.transcription_session.update(
            session={
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": None,  # type: ignore[typeddict-item]  # null: manual commit (the beta types lack it)
            }
        )
        await stream(conn, audio, 800)
        await conn.input_audio_buffer.commit()
        await events.wait(lambda ev: completed(ev))
    assert events.of("transcription_session.created") and not events.of("error")
    assert events.all[1].type == "transcription_session.updated"
    assert events.all[1].session.input_audio_format == "g711_ulaw"
    check_items(events, "conversation.item.created")
    # tiny.en on 8 kHz speech gets the opening right (as the native μ-law test shows).
    (done,) = completed(events)
    assert done.transcript.lower().startswith("hello world"), done.transcript


async def test_bad_events_and_bad_keys(rt: Fleet1) -> None:
    async with client(rt).realtime.connect(extra_query=TRANSCRIPTION) as conn, session(conn) as events:
        await conn.send({"type": "response.create", "event_id": "evt_1"})
        await conn.session.update(
            session={"type": "transcription", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
        )
        await events.wait(lambda ev: len(ev.of("error")) == 2)
        await conn.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        await events.wait(lambda ev: ev.of("session.updated"))
    unknown, semantic = (e.error for e in events.of("error"))
    assert (unknown.code, unknown.param, unknown.event_id) == ("invalid_value", "type", "evt_1")
    assert semantic.param == "session.audio.input.turn_detection.type" and "server_vad" in semantic.message

    got: list[Any] = []
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        async with client(rt, key="dk_wrong").realtime.connect(extra_query=TRANSCRIPTION) as conn:
            async for event in conn:
                got.append(event)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert got and got[0].type == "error" and got[0].error.code == "invalid_api_key", got
