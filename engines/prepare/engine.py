"""Decode the original upload once: a 16 kHz mono WAV for transcription plus one WAV per channel."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import av

from engines.base import EngineError, write_output
from shared.audio import TARGET_RATE, AudioError, decode, write_wav
from shared.contracts import PrepareOutput, TaskMessage
from shared.storage import ObjectStore


class PrepareEngine:
    engine_id = "prepare"

    def load(self) -> None:
        pass  # no model

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        original = workdir / f"original{PurePosixPath(task.audio_key).suffix}"
        store.get_file(task.audio_key, original)
        try:
            audio, src_rate = decode(original)
        except AudioError as exc:
            raise EngineError(f"cannot decode audio: {exc}", retryable=False) from exc
        channels = audio.shape[1]

        audio_key = f"{task.output_prefix}audio.wav"
        mono = workdir / "audio.wav"
        write_wav(mono, audio.mean(axis=1) if channels > 1 else audio[:, 0])
        store.put_file(audio_key, mono)

        channel_keys = [audio_key]
        if channels > 1:
            channel_keys = []
            for i in range(channels):
                path, key = workdir / f"channel_{i}.wav", f"{task.output_prefix}channel_{i}.wav"
                write_wav(path, audio[:, i])
                store.put_file(key, path)
                channel_keys.append(key)

        return write_output(
            store,
            task,
            PrepareOutput(
                audio_key=audio_key,
                channel_keys=channel_keys,
                duration=audio.shape[0] / TARGET_RATE,
                channels=channels,
                original_sample_rate=src_rate,
                original_format=_container_format(original),
            ),
        )


def _container_format(path: Path) -> str | None:
    # Header only: `decode` has already proven the file opens.
    with av.open(str(path), metadata_errors="ignore") as container:
        return container.format.name
