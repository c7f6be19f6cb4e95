"""The redact stage: the original upload with each entity's time span (± buffer) silenced or
covered by a 1 kHz beep, on every channel, at the original sample rate, as a 16-bit WAV.

The original upload, not prepare's 16 kHz mono copy, is what gets redacted: the redacted file
replaces it for listening, so it keeps the rate and channel layout the caller sent. When the
job asks for it, the original is deleted — only after the redacted file is stored, so a failure
in between never leaves the job with no audio at all.
"""

from __future__ import annotations

import wave
from pathlib import Path, PurePosixPath

import numpy as np

from engines.audio_redactor.redact import apply, merge_spans
from engines.base import EngineError, config_of, read_input, write_output
from shared import keys
from shared.audio import AudioError, decode
from shared.contracts import DetectOutput, PrepareOutput, RedactConfig, RedactOutput, TaskMessage
from shared.storage import ObjectNotFound, ObjectStore


class AudioRedactorEngine:
    engine_id = "audio-redactor"

    def load(self) -> None:
        pass  # no model

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, RedactConfig)
        prepared = read_input(store, task, "prepare", PrepareOutput)
        detected = read_input(store, task, "detect", DetectOutput)
        redacted_key = keys.job_redacted_audio(task.job_id)

        original = workdir / f"original{PurePosixPath(task.audio_key).suffix}"
        try:
            store.get_file(task.audio_key, original)
        except ObjectNotFound:
            # A retry after the original was deleted: the redacted file stored before it stands.
            if config.delete_original and store.exists(redacted_key):
                spans = self._spans(config, detected, prepared.duration)
                return self._output(store, task, config, prepared, detected, redacted_key, spans, reused=True)
            raise EngineError(f"the original audio {task.audio_key} is no longer stored", retryable=False) from None
        try:
            # Decoding at the source rate keeps every sample as it was (soxr passes equal rates through).
            audio, rate = decode(original, target_rate=prepared.original_sample_rate)
        except AudioError as exc:
            raise EngineError(f"cannot decode audio: {exc}", retryable=False) from exc

        spans = self._spans(config, detected, audio.shape[0] / rate)
        path = workdir / "redacted.wav"
        _write_pcm16(path, apply(audio, rate, spans, config.mode), rate)
        store.put_file(redacted_key, path)
        if config.delete_original:
            store.delete_prefix(task.audio_key)
        return self._output(store, task, config, prepared, detected, redacted_key, spans, channels=audio.shape[1], rate=rate)

    @staticmethod
    def _spans(config: RedactConfig, detected: DetectOutput, duration: float) -> list[tuple[float, float]]:
        return merge_spans(((e.start, e.end) for e in detected.entities), config.buffer_s, duration)

    def _output(
        self,
        store: ObjectStore,
        task: TaskMessage,
        config: RedactConfig,
        prepared: PrepareOutput,
        detected: DetectOutput,
        redacted_key: str,
        spans: list[tuple[float, float]],
        *,
        channels: int | None = None,
        rate: int | None = None,
        reused: bool = False,
    ) -> str:
        output = RedactOutput(
            audio_key=redacted_key,
            spans=spans,
            sample_rate=rate or prepared.original_sample_rate,
            channels=channels or prepared.channels,
            details={
                "engine_id": self.engine_id,
                "mode": config.mode,
                "buffer_s": config.buffer_s,
                "entities": len(detected.entities),
                "original_deleted": config.delete_original,
                **({"reused": True} if reused else {}),
            },
        )
        return write_output(store, task, output)


def _write_pcm16(path: Path, audio: np.ndarray, rate: int) -> None:
    """`(samples, channels)` float as 16-bit PCM, scaled by 32768 and rounded: the exact inverse
    of decoding 16-bit audio, so a 16-bit original comes back bit-identical outside the spans."""
    pcm = np.clip(np.rint(audio * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
