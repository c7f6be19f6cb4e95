"""Session recordings: chunked, crash-safe writes and byte-exact read-back (filesystem store)."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from support import until

from realtime_worker.audio import AudioDecoder
from shared import keys
from shared.realtime import protocol as p
from shared.realtime import recording
from shared.realtime.recording import Recorder
from shared.storage import FileStore

RATE = 16_000


def pcm(seconds: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, int(seconds * RATE), dtype=np.int64).astype("<i2").tobytes()


def read_back(store: FileStore, session_id: str) -> tuple[bytes, int]:
    manifest = recording.read_manifest(store, session_id)
    assert manifest is not None
    data = b"".join(recording.iter_wav(store, session_id, manifest))
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return wav.readframes(wav.getnframes()), len(data)


def test_pcm16_identity_through_the_worker_decoder() -> None:
    """What a client sends as pcm_s16le at 16 kHz is what gets recorded, bit for bit."""
    data = pcm(2.0) + b"\x00\x80\xff\x7f"  # include -32768 and 32767
    samples = AudioDecoder("pcm_s16le", RATE).decode(data)
    assert recording.to_pcm16(samples) == data


async def test_recording_is_byte_exact_and_complete(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    recorder = Recorder(store, "s1", chunk_seconds=0.5)
    sent = pcm(2.3)
    decoder = AudioDecoder("pcm_s16le", RATE)
    for i in range(0, len(sent), 3200):  # 100 ms frames
        recorder.append(decoder.decode(sent[i : i + 3200]))
    summary = await recorder.close()
    assert summary == {"bytes": len(sent), "duration": 2.3, "complete": True, "error": None}
    manifest = recording.read_manifest(store, "s1")
    assert manifest.complete and manifest.chunks == 5 and manifest.chunk_bytes == 16_000
    assert [len(store.get_bytes(keys.session_chunk("s1", i))) for i in range(5)] == [16_000] * 4 + [9_600]
    frames, size = read_back(store, "s1")
    assert frames == sent
    assert size == recording.WAV_HEADER_BYTES + len(sent)


async def test_a_crash_leaves_every_full_chunk(tmp_path: Path) -> None:
    """Without close() (the worker was killed), the stored recording is the full chunks:
    a prefix of what was sent, short by less than one chunk."""
    store = FileStore(tmp_path)
    recorder = Recorder(store, "s2", chunk_seconds=1.0)
    sent = pcm(3.7, seed=1)
    recorder.append(np.frombuffer(sent, dtype="<i2").astype(np.float32) / 32768.0)
    await until(lambda: getattr(recording.read_manifest(store, "s2"), "chunks", 0) == 3, "three chunks stored")
    manifest = recording.read_manifest(store, "s2")
    assert not manifest.complete and manifest.chunks == 3 and manifest.duration == 3.0
    frames, _ = read_back(store, "s2")
    assert frames == sent[: 3 * 32_000]
    recorder.writer.cancel()


async def test_finals_are_stored_as_they_come(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    recorder = Recorder(store, "s3", chunk_seconds=1.0)
    recorder.add_final(
        p.TranscriptFinal(utterance_id=0, text="Hello there.", start=0.1, end=1.2, language="en", reason="vad", latency_ms=80.0)
    )
    await until(lambda: recording.read_transcript(store, "s3") is not None, "the first final stored")
    assert recording.read_transcript(store, "s3")["text"] == "Hello there."
    recorder.add_final(
        p.TranscriptFinal(
            utterance_id=1,
            text="General Kenobi.",
            start=1.5,
            end=2.4,
            language="en",
            reason="vad",
            latency_ms=80.0,
            words=[p.StreamWord(word="General", start=1.5, end=1.9)],
        )
    )
    await recorder.close()
    stored = json.loads(store.get_bytes(keys.session_transcript("s3")))
    assert stored["text"] == "Hello there. General Kenobi."
    assert [s["utterance_id"] for s in stored["segments"]] == [0, 1]
    assert "reason" not in stored["segments"][0] and stored["segments"][1]["words"][0]["word"] == "General"


async def test_storage_failure_stops_the_recording_not_the_session(tmp_path: Path) -> None:
    class Broken(FileStore):
        def put_bytes(self, key: str, data: bytes) -> None:
            raise OSError("disk full")

    recorder = Recorder(Broken(tmp_path), "s4", chunk_seconds=0.1)
    recorder.append(np.zeros(RATE, dtype=np.float32))
    summary = await recorder.close()
    assert summary["error"] == "recording stopped: OSError: disk full"
    assert summary["bytes"] == 0 and not summary["complete"]


def test_no_manifest_means_no_recording(tmp_path: Path) -> None:
    assert recording.read_manifest(FileStore(tmp_path), "nope") is None
    assert recording.read_transcript(FileStore(tmp_path), "nope") is None


@pytest.mark.parametrize("data_bytes", [0, 32_000, 12_345 * 2])
def test_wav_header_is_what_wave_reads(data_bytes: int) -> None:
    data = recording.wav_header(data_bytes) + b"\x00" * data_bytes
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert wav.getnframes() == data_bytes // 2 and wav.getframerate() == RATE
