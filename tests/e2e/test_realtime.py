"""Realtime end to end: gateway + session router + two realtime workers as processes.

Audio is streamed at real-time pace in 100 ms chunks, so each streaming test takes as long
as its fixture; timeouts are generous because the machine is shared.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import soxr
import websockets
from harness import API_KEY, ROOT, reference, wer
from support import FIXTURES, REDIS_URL, create_database, drop_database, free_port, until

from dalston.fleet import Fleet, gateway_service, realtime_worker_service, session_router_service, wait_http
from shared.audio import read_wav
from shared.keys import REALTIME_WORKERS as WORKERS
from shared.keys import realtime_leases as leases_key

pytestmark = pytest.mark.e2e

# Apart from the batch e2e fleets (8/9) and the integration tests' TEST_REDIS_DB.
REALTIME_REDIS_DB = 15
CAPACITY = 2  # per worker
HEARTBEAT_TTL_S = 3.0
MAX_CHUNK = 65_536


@dataclass
class RealtimeFleet:
    fleet: Fleet
    base_url: str
    ws_url: str
    redis_url: str

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/v1/realtime/status", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_status(self, predicate, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"realtime status never matched: {status}")
            time.sleep(0.2)

    def leases(self) -> dict[str, int]:
        r = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return {w: r.zcard(leases_key(w)) for w in r.smembers(WORKERS)}
        finally:
            r.close()


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[RealtimeFleet]:
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REALTIME_REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("realtime")),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_REALTIME_WORKER_CAPACITY": str(CAPACITY),
        # These tests count slots: the configured capacity, not one measured on a busy machine.
        "DALSTON_REALTIME_CAPACITY_AUTO": "false",
        "DALSTON_REALTIME_HEARTBEAT_INTERVAL_S": "1",
        "DALSTON_REALTIME_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
        "DALSTON_REALTIME_ROUTER_INTERVAL_S": "1",
        "DALSTON_REALTIME_MAX_CHUNK_BYTES": str(MAX_CHUNK),
        # Longer than the drain test's session takes on a loaded machine (10 s by default): the
        # worker must exit when its session ends, not at the bound.
        "DALSTON_REALTIME_DRAIN_TIMEOUT_S": "60",
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    services = [
        gateway_service(port),
        session_router_service(),
        realtime_worker_service(free_port(), "realtime-worker-1", "--worker-id", "worker-1"),
        realtime_worker_service(free_port(), "realtime-worker-2", "--worker-id", "worker-2"),
    ]
    fleet = Fleet(services, env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        running = RealtimeFleet(fleet, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", redis_url)
        running.wait_status(lambda s: sum(w["status"] == "ready" for w in s["workers"]) == 2, timeout=120)
        yield running
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()


# -- clients --------------------------------------------------------------------------


def pcm16(name: str, rate: int = 16_000, trailing_silence_s: float = 0.0) -> bytes:
    audio, source_rate = read_wav(FIXTURES / name)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = soxr.resample(audio, source_rate, rate) if source_rate != rate else audio
    audio = np.concatenate([audio, np.zeros(int(trailing_silence_s * rate), dtype=audio.dtype)])
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunks(data: bytes, rate: int = 16_000, chunk_s: float = 0.1, width: int = 2) -> list[bytes]:
    size = int(rate * chunk_s) * width
    return [data[i : i + size] for i in range(0, len(data), size)]


AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Received:
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def of(self, kind: str, key: str = "type") -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get(key) == kind]


async def collect(ws, into: Received) -> None:
    try:
        async for raw in ws:
            into.messages.append(json.loads(raw))
    except websockets.ConnectionClosed:
        pass
    into.close_code = ws.close_code


async def native_stream(rt: RealtimeFleet, audio: bytes, query: str) -> Received:
    """Stream `audio` in real time (100 ms chunks), then `end`; collect every message."""
    got = Received()
    async with websockets.connect(f"{rt.ws_url}/v1/audio/transcriptions/stream?{query}", additional_headers=AUTH) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        for chunk in chunks(audio):
            await ws.send(chunk)
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 120)
    return got


async def refused(url: str, headers: dict[str, str] | None = None) -> Received:
    got = Received()
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        await asyncio.wait_for(collect(ws, got), 30)
    return got


# -- ElevenLabs SDK -------------------------------------------------------------------


async def sdk_stream(rt: RealtimeFleet, audio: bytes, *, strategy: str, timestamps: bool, commit: bool) -> dict[str, list]:
    from elevenlabs import AsyncElevenLabs
    from elevenlabs.realtime import AudioFormat, CommitStrategy, RealtimeEvents

    events: dict[str, list] = {name: [] for name in ("session_started", "partial", "committed", "timestamps", "error", "close")}
    client = AsyncElevenLabs(base_url=rt.base_url, api_key=API_KEY)
    options: dict[str, Any] = {
        "model_id": "scribe_v2_realtime",
        "audio_format": AudioFormat.PCM_16000,
        "sample_rate": 16000,
        "commit_strategy": CommitStrategy.VAD if strategy == "vad" else CommitStrategy.MANUAL,
        "include_timestamps": timestamps,
    }
    if strategy == "vad":
        options["vad_silence_threshold_secs"] = 0.5
    connection = await client.speech_to_text.realtime.connect(options)
    connection.on(RealtimeEvents.SESSION_STARTED, events["session_started"].append)
    connection.on(RealtimeEvents.PARTIAL_TRANSCRIPT, events["partial"].append)
    connection.on(RealtimeEvents.COMMITTED_TRANSCRIPT, events["committed"].append)
    connection.on(RealtimeEvents.COMMITTED_TRANSCRIPT_WITH_TIMESTAMPS, events["timestamps"].append)
    connection.on(RealtimeEvents.ERROR, events["error"].append)
    connection.on(RealtimeEvents.CLOSE, events["close"].append)
    for chunk in chunks(audio):
        await connection.send({"audio_base_64": base64.b64encode(chunk).decode()})
        await asyncio.sleep(0.1)
    if commit:
        await connection.commit()
    deadline = time.monotonic() + 60
    want = 1 if commit else None
    while time.monotonic() < deadline:
        if want and len(events["committed"]) >= want and (not timestamps or len(events["timestamps"]) >= want):
            break
        if not want and events["committed"] and time.monotonic() > deadline - 50:
            break
        await asyncio.sleep(0.1)
    await connection.close()
    return events


async def test_elevenlabs_sdk_manual_commit_with_timestamps(rt: RealtimeFleet) -> None:
    events = await sdk_stream(rt, pcm16("speech_en.wav"), strategy="manual", timestamps=True, commit=True)
    assert not events["error"], events["error"]
    started = events["session_started"][0]
    assert started["session_id"] and started["config"]["audio_format"] == "pcm_16000"
    assert started["config"]["commit_strategy"] == "manual"
    assert events["partial"], "no partial_transcript before the commit"
    assert len(events["committed"]) == 1
    text = events["committed"][0]["text"]
    score = wer(reference("speech_en.txt"), text)
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"
    stamped = events["timestamps"][0]
    assert stamped["text"] == text and stamped["language_code"] == "eng"
    words = [w for w in stamped["words"] if w["type"] == "word"]
    assert len(words) >= 10
    assert all(w["start"] <= w["end"] for w in words)
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
    assert words[-1]["end"] <= 12.5
    assert all(w["logprob"] <= 0 for w in words)


async def test_elevenlabs_sdk_vad_commits(rt: RealtimeFleet) -> None:
    audio = pcm16("short_en.wav", trailing_silence_s=1.5)
    events = await sdk_stream(rt, audio, strategy="vad", timestamps=False, commit=False)
    assert not events["error"], events["error"]
    assert events["session_started"][0]["config"]["commit_strategy"] == "vad"
    assert events["committed"], "VAD never committed"
    text = " ".join(c["text"] for c in events["committed"])
    score = wer(reference("short_en.txt"), text)
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"
    assert not events["timestamps"], "timestamps were not asked for"


async def send_elevenlabs_audio(ws: websockets.ClientConnection, audio: bytes) -> None:
    """`audio` as ElevenLabs `input_audio_chunk` messages, one chunk every 0.1 s."""
    for chunk in chunks(audio):
        await ws.send(json.dumps({"message_type": "input_audio_chunk", "audio_base_64": base64.b64encode(chunk).decode()}))
        await asyncio.sleep(0.1)


async def test_elevenlabs_vad_default_silence(rt: RealtimeFleet) -> None:
    """commit_strategy=vad without vad_silence_threshold_secs: ElevenLabs' default, 1.5 s.
    speech_en.wav, a ~1 s pause (its own 0.4 s tail plus 0.6 s), short_en.wav, then 2 s of
    silence: one committed transcript of both, before the client commits or ends anything.
    Ending the session afterwards flushes whatever is left, so a split at the pause would
    show as a second committed transcript."""
    rate = 16_000
    audio = pcm16("speech_en.wav") + bytes(int(0.6 * rate) * 2) + pcm16("short_en.wav", trailing_silence_s=2.0)
    got = Received()
    query = "model_id=scribe_v2_realtime&commit_strategy=vad"
    async with websockets.connect(
        f"{rt.ws_url}/v1/speech-to-text/realtime?{query}", additional_headers={"xi-api-key": API_KEY}
    ) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        await send_elevenlabs_audio(ws, audio)
        await until(lambda: bool(got.of("committed_transcript", "message_type")), "a VAD commit", timeout=60)
        committed_by_vad = len(got.messages)
        await ws.send(json.dumps({"message_type": "end"}))
        await asyncio.wait_for(receiver, 60)
    assert not [m for m in got.messages if "error" in m], got.messages
    committed = got.of("committed_transcript", "message_type")
    assert len(committed) == 1, committed
    assert got.messages.index(committed[0]) < committed_by_vad
    config = got.messages[0]["config"]
    assert (config["commit_strategy"], config["vad_silence_threshold_secs"]) == ("vad", 1.5), config
    text = committed[0]["text"]
    score = wer(f"{reference('speech_en.txt')} {reference('short_en.txt')}", text)
    print(f"\nElevenLabs default VAD silence: one commit, WER {score:.2f}: {text!r}")
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"


async def test_elevenlabs_entity_detection(rt: RealtimeFleet) -> None:
    """A call with a name, a phone number, a card and an email: each committed transcript is
    followed by its `committed_transcript_entities`, offsets into that transcript's text."""
    got = Received()
    query = "model_id=scribe_v2_realtime&commit_strategy=vad&vad_silence_threshold_secs=0.5&entity_detection=all"
    async with websockets.connect(
        f"{rt.ws_url}/v1/speech-to-text/realtime?{query}", additional_headers={"xi-api-key": API_KEY}
    ) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        await send_elevenlabs_audio(ws, pcm16("pii_call_en.wav", trailing_silence_s=1.0))
        await ws.send(json.dumps({"message_type": "commit"}))
        await ws.send(json.dumps({"message_type": "end"}))
        await asyncio.wait_for(receiver, 120)
    assert not [m for m in got.messages if "error" in m], got.messages
    assert got.messages[0]["config"]["entity_detection"] is not None
    kinds = [m["message_type"] for m in got.messages]
    committed = [i for i, kind in enumerate(kinds) if kind == "committed_transcript"]
    assert committed, kinds
    # Each committed transcript's entities come right after it, about the same text.
    for i in committed:
        assert kinds[i + 1] == "committed_transcript_entities", kinds
        assert got.messages[i + 1]["text"] == got.messages[i]["text"]
    found = [e | {"of": m["text"]} for m in got.of("committed_transcript_entities", "message_type") for e in m["entities"]]
    for entity in found:
        assert entity["of"][entity["start_char"] : entity["end_char"]] == entity["text"], entity
    types = {e["entity_type"] for e in found}
    assert {"phone_number", "person_name"} <= types, found
    names = [e["text"] for e in found if e["entity_type"] == "person_name"]
    assert any("Margaret" in name for name in names), names


async def test_elevenlabs_entity_detection_refuses_unknown_types(rt: RealtimeFleet) -> None:
    url = f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&entity_detection=pii&entity_detection=shoe_size"
    got = await refused(url, {"xi-api-key": API_KEY})
    assert got.messages[0]["message_type"] == "invalid_request" and got.close_code == 1008
    assert "shoe_size" in got.messages[0]["error"] and "entity_detection" in got.messages[0]["error"], got.messages


# -- native protocol ------------------------------------------------------------------


async def test_native_stream_partials_then_finals_with_words(rt: RealtimeFleet) -> None:
    got = await native_stream(rt, pcm16("speech_en.wav", trailing_silence_s=1.0), "word_timestamps=true&language=en")
    kinds = [m["type"] for m in got.messages]
    assert kinds[0] == "session.begin"
    assert kinds[-1] == "session.end" and got.close_code == 1000
    assert "vad.speech_start" in kinds
    finals = got.of("transcript.final")
    # Partials come while an utterance is spoken, its final after them. A busy worker sheds
    # partials (a short utterance may get none), so not every final has them: some do.
    utterances = " ".join(kinds).split("transcript.final")[:-1]
    assert finals and any("transcript.partial" in before for before in utterances), kinds
    text = " ".join(f["text"] for f in finals)
    score = wer(reference("speech_en.txt"), text)
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"
    words = [w for f in finals for w in f["words"]]
    assert len(words) >= 10
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:])), "word times must be session-relative"
    assert 0 <= words[0]["start"] < 2 and 9 < words[-1]["end"] < 13
    stats = got.of("session.end")[0]["stats"]
    assert stats["finals"] == len(finals) and stats["audio_seconds"] == pytest.approx(12.9, abs=0.3)


async def test_native_manual_flush_and_mulaw(rt: RealtimeFleet) -> None:
    # mu-law at 8 kHz, VAD endpointing off: the final comes from the flush only.
    audio, rate = read_wav(FIXTURES / "short_en.wav")
    audio = soxr.resample(audio, rate, 8000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int32)
    ulaw = _mulaw_encode(pcm)
    got = Received()
    async with websockets.connect(
        f"{rt.ws_url}/v1/audio/transcriptions/stream?encoding=mulaw&sample_rate=8000&vad=false", additional_headers=AUTH
    ) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        for chunk in chunks(ulaw, rate=8000, width=1):
            await ws.send(chunk)
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "flush"}))
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 60)
    finals = got.of("transcript.final")
    assert len(finals) == 1 and finals[0]["reason"] == "commit"
    # tiny.en on 8 kHz espeak audio gets the opening right and guesses the rest (the
    # same happens offline, without streaming): check that the audio decoded as speech.
    assert finals[0]["text"].lower().startswith("hello world"), finals[0]


def _mulaw_encode(pcm: np.ndarray) -> bytes:
    bias, clip = 0x84, 32635
    sign = (pcm < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(pcm), clip) + bias
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


# -- refusals and malformed input -----------------------------------------------------


async def test_refusals_close_with_1008(rt: RealtimeFleet) -> None:
    no_key = await refused(f"{rt.ws_url}/v1/audio/transcriptions/stream")
    assert no_key.messages[0]["code"] == "unauthorized" and no_key.close_code == 1008
    bad_key = await refused(f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime", {"xi-api-key": "nope"})
    assert bad_key.messages[0]["message_type"] == "auth_error" and bad_key.close_code == 1008
    bad_model = await refused(f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=nonsense", {"xi-api-key": API_KEY})
    assert bad_model.messages[0]["message_type"] == "invalid_request" and "nonsense" in bad_model.messages[0]["error"]
    assert bad_model.close_code == 1008
    bad_format = await refused(
        f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=mp3", {"xi-api-key": API_KEY}
    )
    assert bad_format.messages[0]["message_type"] == "invalid_request" and bad_format.close_code == 1008
    bad_rate = await refused(f"{rt.ws_url}/v1/audio/transcriptions/stream?api_key={API_KEY}&sample_rate=100")
    assert bad_rate.messages[0]["code"] == "invalid_request" and "sample_rate" in bad_rate.messages[0]["message"]
    parakeet = await refused(f"{rt.ws_url}/v1/audio/transcriptions/stream?variant=fast", AUTH)
    assert parakeet.messages[0]["code"] == "model_unavailable" and "DALSTON_PARAKEET_MODELS" in parakeet.messages[0]["message"]
    # A legacy client: `encoding` instead of `audio_format`, the -beta path, the key in the query.
    async with websockets.connect(
        f"{rt.ws_url}/v1/speech-to-text/realtime-beta?model_id=scribe_v2_realtime&encoding=pcm_8000&api_key={API_KEY}"
    ) as ws:
        started = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert started["message_type"] == "session_started" and started["config"]["sample_rate"] == 8000


async def test_malformed_elevenlabs_frames_get_errors_and_the_session_survives(rt: RealtimeFleet) -> None:
    got = Received()
    url = f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=pcm_16000"
    async with websockets.connect(url, additional_headers={"xi-api-key": API_KEY}) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        await ws.send("{not json")
        await ws.send(
            json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "@@@", "commit": False, "sample_rate": 16000})
        )
        await ws.send(json.dumps({"message_type": "dance"}))
        await ws.send(
            json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "AAAA", "commit": False, "sample_rate": 44100})
        )
        await ws.send(
            json.dumps(
                {
                    "message_type": "input_audio_chunk",
                    "audio_base_64": base64.b64encode(b"\0" * (MAX_CHUNK + 2)).decode(),
                    "commit": False,
                    "sample_rate": 16000,
                }
            )
        )
        await ws.send(b"\x00\x01")
        odd = base64.b64encode(b"\x00\x01\x02").decode()  # 3 bytes: not whole 16-bit samples
        await ws.send(
            json.dumps(
                {
                    "message_type": "input_audio_chunk",
                    "audio_base_64": odd,
                    "commit": False,
                    "sample_rate": 16000,
                    "previous_text": None,
                }
            )
        )
        for chunk in chunks(pcm16("short_en.wav")):
            await ws.send(
                json.dumps(
                    {
                        "message_type": "input_audio_chunk",
                        "audio_base_64": base64.b64encode(chunk).decode(),
                        "commit": False,
                        "sample_rate": 16000,
                        "previous_text": None,
                    }
                )
            )
            await asyncio.sleep(0.1)
        await ws.send(
            json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "", "commit": True, "sample_rate": 16000})
        )
        deadline = time.monotonic() + 60
        while not got.of("committed_transcript", "message_type") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await ws.close()
        await receiver
    # The gateway answers most of these itself, the worker the odd-sized chunk: order may mix.
    errors = sorted(m["message_type"] for m in got.messages if "error" in m)
    assert errors == ["chunk_size_exceeded", *["input_error"] * 6], got.messages
    committed = got.of("committed_transcript", "message_type")
    assert len(committed) == 1
    assert wer(reference("short_en.txt"), committed[0]["text"]) <= 0.35, committed


async def test_malformed_native_frames_get_errors(rt: RealtimeFleet) -> None:
    got = Received()
    async with websockets.connect(f"{rt.ws_url}/v1/audio/transcriptions/stream", additional_headers=AUTH) as ws:
        receiver = asyncio.create_task(collect(ws, got))
        await ws.send("[1, 2")
        await ws.send(json.dumps({"type": "rewind"}))
        await ws.send(json.dumps({"type": "config", "interim_results": "maybe"}))
        await ws.send(b"\x01\x02\x03")
        await ws.send(b"\x00" * (MAX_CHUNK + 2))
        await ws.send(json.dumps({"type": "keepalive"}))
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 30)
    # The gateway refuses oversized frames itself, so that error may overtake the worker's.
    codes = [m["code"] for m in got.of("error")]
    assert sorted(codes) == sorted(["invalid_json", "invalid_message", "invalid_message", "invalid_audio", "chunk_too_large"])
    assert [c for c in codes if c != "chunk_too_large"] == ["invalid_json", "invalid_message", "invalid_message", "invalid_audio"]
    assert got.messages[-1]["type"] == "session.end" and got.close_code == 1000


# -- the pool -------------------------------------------------------------------------


async def _open(rt: RealtimeFleet) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(f"{rt.ws_url}/v1/audio/transcriptions/stream", additional_headers=AUTH)
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 30))


async def test_capacity_spread_and_reuse(rt: RealtimeFleet) -> None:
    sockets = []
    try:
        for _ in range(2 * CAPACITY):
            ws, first = await _open(rt)
            assert first["type"] == "session.begin", first
            sockets.append(ws)
        status = rt.status()
        assert status["active_sessions"] == 2 * CAPACITY
        assert sorted(w["active_sessions"] for w in status["workers"]) == [CAPACITY, CAPACITY], "sessions must spread"
        extra, first = await _open(rt)
        assert first["code"] == "no_capacity" and "busy" in first["message"]
        await asyncio.wait_for(extra.wait_closed(), 10)
        assert extra.close_code == 1013
        el = await refused(f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime", {"xi-api-key": API_KEY})
        assert el.messages[0]["message_type"] == "resource_exhausted" and el.close_code == 1013
        await sockets.pop().close()
        rt.wait_status(lambda s: s["active_sessions"] == 2 * CAPACITY - 1, timeout=10)
        ws, first = await _open(rt)
        sockets.append(ws)
        assert first["type"] == "session.begin"
    finally:
        for ws in sockets:
            await ws.close()
    rt.wait_status(lambda s: s["active_sessions"] == 0, timeout=10)


async def test_no_leaked_reservations_after_100_cycles(rt: RealtimeFleet) -> None:
    for i in range(100):
        ws, first = await _open(rt)
        assert first["type"] == "session.begin", (i, first)
        if i % 3 == 0:
            await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(ws.wait_closed(), 10)
        elif i % 3 == 1:
            await ws.close()
        else:
            ws.transport.abort()  # the client vanishes without a close frame
    rt.wait_status(lambda s: s["active_sessions"] == 0, timeout=15)
    assert set(rt.leases().values()) == {0}
    assert all(w["status"] == "ready" for w in rt.status()["workers"])


async def test_sigkill_worker_fails_its_sessions_and_the_pool_heals(rt: RealtimeFleet) -> None:
    a, _ = await _open(rt)
    b, _ = await _open(rt)
    try:
        assert sorted(w["active_sessions"] for w in rt.status()["workers"]) == [1, 1]

        async def keep_sending(ws) -> None:  # audio in flight while the worker dies
            try:
                while True:
                    await ws.send(b"\0\0" * 1600)
                    await asyncio.sleep(0.1)
            except websockets.ConnectionClosed:
                pass

        senders = [asyncio.create_task(keep_sending(ws)) for ws in (a, b)]
        await asyncio.sleep(0.5)
        rt.fleet.kill("realtime-worker-1")
        results = [Received(), Received()]
        await asyncio.wait(
            [asyncio.create_task(collect(ws, r)) for ws, r in zip((a, b), results)],
            timeout=15,
            return_when=asyncio.FIRST_COMPLETED,
        )
        lost = [r for r in results if r.close_code is not None]
        assert len(lost) == 1, [r.messages for r in results]
        assert lost[0].messages[-1]["code"] == "worker_lost" and lost[0].close_code == 1011
        # The dead worker leaves the pool when its heartbeat expires; the wait's deadline only
        # stops waiting (how fast it goes is bench material, not a test's).
        status = rt.wait_status(lambda s: [w["id"] for w in s["workers"]] == ["worker-2"], timeout=HEARTBEAT_TTL_S + 60)
        assert status["capacity"] == CAPACITY
        c, first = await _open(rt)
        assert first["type"] == "session.begin"
        assert rt.status()["workers"][0]["active_sessions"] == 2
        await c.close()
        for sender in senders:
            sender.cancel()
    finally:
        await a.close()
        await b.close()


async def test_single_use_token_authenticates_once(rt: RealtimeFleet) -> None:
    response = httpx.post(f"{rt.base_url}/v1/single-use-token/realtime_scribe", headers={"xi-api-key": API_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    url = f"{rt.ws_url}/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&token={token}"
    async with websockets.connect(url) as ws:  # a browser: no headers at all
        started = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert started["message_type"] == "session_started"
    reused = await refused(url)
    assert reused.messages[0]["message_type"] == "auth_error" and "already used" in reused.messages[0]["error"]
    assert reused.close_code == 1008


async def test_sigterm_drains_a_worker(rt: RealtimeFleet) -> None:
    """A worker told to stop takes no new sessions but lets its live one finish: the speech
    sent after SIGTERM is still transcribed, and the worker exits once the session ends."""
    rt.fleet.restart("realtime-worker-1")  # the SIGKILL test may have left it down
    rt.wait_status(lambda s: sum(w["status"] == "ready" for w in s["workers"]) == 2, timeout=120)
    got = Received()
    async with websockets.connect(f"{rt.ws_url}/v1/audio/transcriptions/stream?language=en", additional_headers=AUTH) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "session.begin"
        receiver = asyncio.create_task(collect(ws, got))
        [host] = [w["id"] for w in rt.status()["workers"] if w["active_sessions"] == 1]
        name = f"realtime-{host}"
        began = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(rt.fleet.kill, name, signal.SIGTERM))
        await asyncio.to_thread(
            rt.wait_status, lambda s: any(w["id"] == host and w["status"] == "draining" for w in s["workers"]), 30
        )
        other, begin = await _open(rt)  # allocated to the worker that is not draining
        assert begin["type"] == "session.begin"
        assert [w["active_sessions"] for w in rt.status()["workers"] if w["id"] != host] == [1]
        await other.close()
        for chunk in chunks(pcm16("short_en.wav", trailing_silence_s=1.0)):
            await ws.send(chunk)
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 60)
        code = await stopping
    print(f"\nrealtime drain: the worker exited {time.monotonic() - began:.1f} s after SIGTERM, its session done")
    rt.fleet.restart(name)
    assert got.of("transcript.final") and got.messages[-1]["type"] == "session.end" and got.close_code == 1000
    assert code == 0
