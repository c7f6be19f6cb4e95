"""Hybrid mode end to end: a realtime session over a two-voice conversation, recorded and
enhanced by the batch pipeline (diarization, word timestamps); a worker SIGKILLed
mid-session leaves an `interrupted` session with the audio it had stored.

The whole fleet runs as processes (gateway, orchestrator, batch engines, session router,
one realtime worker). Audio is streamed at 4x real time (the worker's lag limit is raised
for it), in 100 ms pcm_16000 chunks: PCM16 at 16 kHz is what the recording stores, so the
stored recording must equal the bytes sent.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets
from harness import API_KEY, RunningFleet, reference, start_fleet, wait_for, wer
from support import FIXTURES, until

from shared.audio import read_wav
from shared.realtime import recording
from shared.storage import FileStore

pytestmark = pytest.mark.e2e
# Only speaker detection needs the 'diarize' extra: the other tests here run without it.
needs_diarizer = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None, reason="speaker detection needs the 'diarize' extra"
)

REDIS_DB = 10
SPEEDUP = 4.0
CHUNK_S = 0.1
TURNS = json.loads((FIXTURES / "conversation_en.json").read_text())["turns"]
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    env = {
        "DALSTON_REALTIME_LAG_MAX_S": "60",
        "DALSTON_REALTIME_HEARTBEAT_INTERVAL_S": "1",
        "DALSTON_REALTIME_HEARTBEAT_TTL_S": "3",
        "DALSTON_REALTIME_ROUTER_INTERVAL_S": "1",
    }
    for running in start_fleet("fs", tmp_path_factory.mktemp("fleet-hybrid"), env, redis_db=REDIS_DB):
        wait_for_worker(running)
        yield running


def wait_for_worker(fleet: RunningFleet, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{fleet.base_url}/v1/realtime/status", headers=AUTH, timeout=10).json()
        if any(w["status"] == "ready" for w in status.get("workers", [])):
            return
        time.sleep(0.5)
    raise TimeoutError("no realtime worker became ready")


def conversation_pcm() -> bytes:
    audio, rate = read_wav(FIXTURES / "conversation_en.wav")
    audio = soxr.resample(audio, rate, 16_000)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def ws_url(fleet: RunningFleet, query: str) -> str:
    return f"{fleet.base_url.replace('http', 'ws', 1)}/v1/audio/transcriptions/stream?{query}"


async def stream(url: str, audio: bytes, *, end: bool = True, on_sent=None) -> tuple[list[dict[str, Any]], int | None]:
    """Send `audio` in 100 ms chunks at SPEEDUP x real time; collect every message."""
    messages: list[dict[str, Any]] = []
    size = int(16_000 * CHUNK_S) * 2
    async with websockets.connect(url, additional_headers=AUTH, max_size=None) as ws:

        async def collect() -> None:
            try:
                async for raw in ws:
                    messages.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass

        receiver = asyncio.create_task(collect())
        sent = 0
        try:
            for i in range(0, len(audio), size):
                await ws.send(audio[i : i + size])
                sent = i + size
                if on_sent is not None:
                    await on_sent(min(sent, len(audio)), messages)
                await asyncio.sleep(CHUNK_S / SPEEDUP)
            if end:
                await ws.send(json.dumps({"type": "end"}))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(receiver, 300)
        return messages, ws.close_code


def truth_at(t: float) -> str:
    return min(TURNS, key=lambda turn: max(turn["start"] - t, t - turn["end"], 0.0))["speaker"]


@needs_diarizer
def test_enhance_on_end_diarizes_the_recording(fleet: RunningFleet) -> None:
    audio = conversation_pcm()
    query = "language=en&word_timestamps=true&enhance_on_end=true&speaker_detection=diarize"
    messages, close_code = asyncio.run(stream(ws_url(fleet, query), audio))
    assert close_code == 1000, messages[-3:]
    begin, end = messages[0], messages[-1]
    assert begin["type"] == "session.begin" and end["type"] == "session.end", end
    session_id = begin["session_id"]
    assert "enhancement_error" not in end and end["enhancement_job_id"], end
    assert end["recording"] == {"bytes": len(audio), "duration": round(len(audio) / 32_000, 3), "complete": True, "error": None}
    realtime_text = " ".join(m["text"] for m in messages if m["type"] == "transcript.final")

    with fleet.client() as client:
        session = client.get(f"/v1/realtime/sessions/{session_id}").json()
        assert session["status"] == "completed" and session["enhancement_job_id"] == end["enhancement_job_id"]
        assert session["audio_duration"] == pytest.approx(len(audio) / 32_000, abs=0.01)
        assert session["recording_bytes"] == len(audio) and session["segment_count"] >= 4

        # The recording is byte for byte what was sent (pcm_16000: normalisation is the identity).
        wav = client.get(f"/v1/realtime/sessions/{session_id}/audio")
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        assert wav.content[44:] == audio
        stored = client.get(f"/v1/realtime/sessions/{session_id}/transcript").json()
        assert stored["text"] == realtime_text and all(s["words"] for s in stored["segments"])

        job = wait_for(client, end["enhancement_job_id"], timeout=600)
    assert job["status"] == "completed", job
    assert job["source_session_id"] == session_id and job["speaker_detection"] == "diarize"
    assert job["audio"]["duration"] == pytest.approx(len(audio) / 32_000, abs=0.01)
    transcript = job["transcript"]
    assert len(transcript["speakers"]) == 2, transcript["speakers"]
    words = transcript["words"]
    assert words and all(w["speaker"] in transcript["speakers"] and w["start"] <= w["end"] for w in words)
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
    votes: dict[tuple[str, str], int] = {}
    for w in words:
        key = (w["speaker"], truth_at((w["start"] + w["end"]) / 2))
        votes[key] = votes.get(key, 0) + 1
    mapping = {s: max(("A", "B"), key=lambda t: votes.get((s, t), 0)) for s in transcript["speakers"]}
    assert set(mapping.values()) == {"A", "B"}
    speaker_accuracy = sum(mapping[w["speaker"]] == truth_at((w["start"] + w["end"]) / 2) for w in words) / len(words)

    truth = reference("conversation_en.txt")
    scores = {
        "realtime_vs_reference": wer(truth, realtime_text),
        "enhanced_vs_reference": wer(truth, transcript["text"]),
        "enhanced_vs_realtime": wer(realtime_text, transcript["text"]),
    }
    print(f"\nhybrid WER: {json.dumps({k: round(v, 3) for k, v in scores.items()})}; speaker accuracy {speaker_accuracy:.3f}")
    assert speaker_accuracy >= 0.9
    assert scores["realtime_vs_reference"] <= 0.3 and scores["enhanced_vs_reference"] <= 0.3
    assert scores["enhanced_vs_realtime"] <= 0.3


def test_retain_audio_false_stores_nothing(fleet: RunningFleet) -> None:
    audio = conversation_pcm()[: 2 * 32_000]
    messages, close_code = asyncio.run(stream(ws_url(fleet, "retain_audio=false"), audio))
    assert close_code == 1000 and "recording" not in messages[-1]
    session_id = messages[0]["session_id"]
    with fleet.client() as client:
        session = client.get(f"/v1/realtime/sessions/{session_id}").json()
        assert session["retain_audio"] is False and session["recording_bytes"] is None
        assert session["audio_duration"] == pytest.approx(2.0, abs=0.01)
        assert client.get(f"/v1/realtime/sessions/{session_id}/audio").json()["error"]["code"] == "not_retained"
    assert not list((fleet.data_dir / "storage" / "sessions").glob(f"{session_id}*"))


def test_bad_enhancement_options_are_refused_before_the_session(fleet: RunningFleet) -> None:
    async def refused(query: str) -> tuple[dict, int | None]:
        async with websockets.connect(ws_url(fleet, query), additional_headers=AUTH) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            await asyncio.wait_for(ws.wait_closed(), 30)
            return first, ws.close_code

    for query, fragment in (
        ("enhance_on_end=true&speaker_detection=everyone", "speaker_detection must be one of"),
        ("enhance_on_end=true&retain_audio=false", "retain_audio=false"),
        ("speaker_detection=diarize", "need enhance_on_end=true"),
        ("enhance_on_end=true&speaker_detection=diarize&num_speakers=0", "num_speakers"),
    ):
        first, code = asyncio.run(refused(query))
        assert first["code"] == "invalid_request" and fragment in first["message"] and code == 1008, (query, first)


def test_sigkill_mid_session_leaves_an_interrupted_session_with_its_audio(fleet: RunningFleet) -> None:
    audio = conversation_pcm()
    sent_bytes = 0
    killed = False

    store = FileStore(fleet.data_dir / "storage")

    async def kill_after_5s(sent: int, messages: list[dict[str, Any]]) -> None:
        nonlocal sent_bytes, killed
        sent_bytes = sent
        if not killed and sent >= 5 * 32_000:
            # Kill once the worker has stored the first 5 s (five one-second chunks), not
            # after a guessed pause: what it stored is what the session must keep.
            def stored_chunks() -> int:
                manifest = recording.read_manifest(store, messages[0]["session_id"]) if messages else None
                return manifest.chunks if manifest else 0

            await until(lambda: stored_chunks() >= 5, "the worker stored the first 5 s of the recording", timeout=120)
            fleet.fleet.kill("realtime-worker")
            killed = True

    query = "language=en&enhance_on_end=true"
    messages, close_code = asyncio.run(stream(ws_url(fleet, query), audio, end=False, on_sent=kill_after_5s))
    assert killed and close_code == 1011, messages[-3:]
    lost = messages[-1]
    assert lost["type"] == "error" and lost["code"] == "worker_lost", lost
    session_id = messages[0]["session_id"]
    with fleet.client() as client:
        session = client.get(f"/v1/realtime/sessions/{session_id}").json()
        assert session["status"] == "interrupted" and session["error"].startswith("worker_lost")
        stored = session["recording_bytes"]
        # Whole one-second chunks of what the worker received: at least the first 5 s.
        assert stored % 32_000 == 0 and 5 * 32_000 <= stored <= sent_bytes, (stored, sent_bytes)
        assert session["audio_duration"] == stored / 32_000
        wav = client.get(f"/v1/realtime/sessions/{session_id}/audio")
        assert wav.content[44:] == audio[:stored]
        # The partial recording was enhanced; the lost-worker error carries the job id.
        assert lost["enhancement_job_id"] == session["enhancement_job_id"]
        job = wait_for(client, lost["enhancement_job_id"], timeout=300)
    assert job["status"] == "completed" and job["audio"]["duration"] == pytest.approx(stored / 32_000, abs=0.01)
    assert job["source_session_id"] == session_id and job["transcript"]["text"]
