"""Session recordings in object storage: written by the worker as audio arrives (`Recorder`),
read back by the gateway (REST download, hybrid-mode enhancement).

S3 has no append, so a recording is a run of fixed-size chunk objects plus a manifest
(keys in shared.keys):

    sessions/{id}/audio/chunk-00000.pcm ...   16 kHz mono PCM16 little-endian
    sessions/{id}/audio/manifest.json         {"chunks": n, "bytes": total, ...}
    sessions/{id}/transcript.json             the finals so far

Every chunk but the last holds exactly `chunk_bytes`; a chunk is written as soon as it is
full (one second of audio by default), then the manifest. A worker that dies mid-session
therefore leaves a usable recording of everything up to its last full chunk: the manifest
never names a chunk that is not stored. Readers stitch chunks together (with a WAV header
in front) rather than keeping a second, assembled copy.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog
from pydantic import BaseModel

from shared import keys
from shared.audio import TARGET_RATE
from shared.realtime.protocol import RecordingSummary, TranscriptFinal
from shared.storage import ObjectNotFound, ObjectStore

log = structlog.get_logger("realtime-worker.recording")

SAMPLE_WIDTH = 2  # PCM16
WAV_HEADER_BYTES = 44
# What a stored segment keeps of a final (the transcript's `segments`).
SEGMENT_FIELDS = {"utterance_id", "text", "start", "end", "language", "words"}


class Manifest(BaseModel):
    sample_rate: int = TARGET_RATE
    channels: int = 1
    encoding: str = "pcm_s16le"
    chunk_bytes: int
    chunks: int = 0
    bytes: int = 0
    # True once the worker closed the recording; False after a crash mid-session.
    complete: bool = False

    @property
    def duration(self) -> float:
        return self.bytes / SAMPLE_WIDTH / self.sample_rate / self.channels

    def chunk_size(self, index: int) -> int:
        return min(self.chunk_bytes, self.bytes - index * self.chunk_bytes)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1) -> PCM16. Exact inverse of int16 / 32768, so PCM16 input at
    16 kHz is recorded byte for byte."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


# -- writing (the worker) ------------------------------------------------------------------

_Write = tuple[Literal["chunk"], bytes] | tuple[Literal["transcript"], dict[str, Any]] | tuple[Literal["complete"], None]


class Recorder:
    """Collects a session's normalised audio and finals and writes them in order, off the
    event loop, by one writer task. Storage errors are logged and end the recording, not
    the session."""

    def __init__(self, store: ObjectStore, session_id: str, *, chunk_seconds: float) -> None:
        self.store = store
        self.session_id = session_id
        chunk_bytes = max(1, int(chunk_seconds * TARGET_RATE)) * SAMPLE_WIDTH
        self.manifest = Manifest(chunk_bytes=chunk_bytes)
        self.buffer = bytearray()
        self.finals: list[dict[str, Any]] = []
        self.error: str | None = None
        self.queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write_loop())
        self.closed = False

    def append(self, samples: np.ndarray) -> None:
        if self.closed:
            return
        self.buffer += to_pcm16(samples)
        size = self.manifest.chunk_bytes
        while len(self.buffer) >= size:
            self.queue.put_nowait(("chunk", bytes(self.buffer[:size])))
            del self.buffer[:size]

    def add_final(self, final: TranscriptFinal) -> None:
        if self.closed:
            return
        self.finals.append(final.model_dump(mode="json", include=SEGMENT_FIELDS))
        self.queue.put_nowait(("transcript", self._transcript()))

    def _transcript(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "text": " ".join(f["text"] for f in self.finals if f.get("text")),
            "segments": list(self.finals),
        }

    async def close(self) -> RecordingSummary:
        """Write what is buffered, mark the recording complete; returns its summary."""
        if not self.closed:
            self.closed = True
            if self.buffer:
                self.queue.put_nowait(("chunk", bytes(self.buffer)))
                self.buffer.clear()
            self.queue.put_nowait(("complete", None))
            self.queue.put_nowait(None)
        await asyncio.shield(self.writer)
        return self.summary()

    def summary(self) -> RecordingSummary:
        return {
            "bytes": self.manifest.bytes,
            "duration": round(self.manifest.duration, 3),
            "complete": self.manifest.complete,
            "error": self.error,
        }

    async def _write_loop(self) -> None:
        while (item := await self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                await asyncio.to_thread(self._write, item)
            except Exception as exc:  # storage down: keep transcribing, report it at the end
                self.error = f"recording stopped: {type(exc).__name__}: {exc}"
                log.warning("recording_failed", session_id=self.session_id, error=self.error)

    def _write(self, item: _Write) -> None:
        manifest = self.manifest
        if item[0] == "chunk":
            chunk = item[1]
            self.store.put_bytes(keys.session_chunk(self.session_id, manifest.chunks), chunk)
            # The manifest moves only after its chunk is stored.
            self.manifest = manifest.model_copy(update={"chunks": manifest.chunks + 1, "bytes": manifest.bytes + len(chunk)})
        elif item[0] == "complete":
            self.manifest = manifest.model_copy(update={"complete": True})
        else:
            self.store.put_bytes(keys.session_transcript(self.session_id), json.dumps(item[1]).encode())
            return
        self.store.put_bytes(keys.session_manifest(self.session_id), self.manifest.model_dump_json().encode())


# -- reading (the gateway) -----------------------------------------------------------------


def read_manifest(store: ObjectStore, session_id: str) -> Manifest | None:
    try:
        return Manifest.model_validate_json(store.get_bytes(keys.session_manifest(session_id)))
    except ObjectNotFound:
        return None


def read_transcript(store: ObjectStore, session_id: str) -> dict[str, Any] | None:
    try:
        transcript: dict[str, Any] = json.loads(store.get_bytes(keys.session_transcript(session_id)))
    except ObjectNotFound:
        return None
    return transcript


def read_chunk(store: ObjectStore, session_id: str, index: int) -> bytes:
    return store.get_bytes(keys.session_chunk(session_id, index))


def wav_header(data_bytes: int, sample_rate: int = TARGET_RATE, channels: int = 1) -> bytes:
    block = channels * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE",
        b"fmt ", 16, 1, channels, sample_rate, sample_rate * block, block, 8 * SAMPLE_WIDTH,
        b"data", data_bytes,
    )  # fmt: skip


def iter_wav(store: ObjectStore, session_id: str, manifest: Manifest) -> Iterator[bytes]:
    """The recording as a WAV file, one chunk object at a time."""
    yield wav_header(manifest.bytes, manifest.sample_rate, manifest.channels)
    for index in range(manifest.chunks):
        yield read_chunk(store, session_id, index)


def write_wav(store: ObjectStore, session_id: str, manifest: Manifest, path: Path) -> int:
    """Assemble the recording into a WAV file at `path`; returns its size."""
    size = 0
    with path.open("wb") as out:
        for part in iter_wav(store, session_id, manifest):
            out.write(part)
            size += len(part)
    return size


def delete(store: ObjectStore, session_id: str) -> int:
    """Delete the recording and transcript; returns how many objects went."""
    return store.delete_prefix(keys.session_prefix(session_id))
