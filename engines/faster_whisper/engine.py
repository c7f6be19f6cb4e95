"""Transcription with faster-whisper (CTranslate2). Models load once and stay loaded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel

from engines.base import EngineError, config_of, read_input, write_output
from shared import model_registry
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import PrepareOutput, TaskMessage, TranscribeConfig, TranscribeOutput
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore
from shared.transcript import Segment, Word


class FasterWhisperEngine:
    engine_id = "faster-whisper"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._models: dict[str, WhisperModel] = {}

    def load(self) -> None:
        self.model(self.settings.default_model)

    def model(self, name: str | None) -> WhisperModel:
        try:
            entry = model_registry.resolve(name, self.settings)
        except model_registry.UnknownModel as exc:
            raise EngineError(str(exc), retryable=False) from exc
        if entry.name not in self._models:
            try:
                self._models[entry.name] = model_registry.load_whisper(entry, self.settings)
            except Exception as exc:
                raise EngineError(f"cannot load model {entry.name!r} from {entry.source}: {exc}", retryable=False) from exc
        return self._models[entry.name]

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, TranscribeConfig)
        name = config.model or self.settings.default_model
        model = self.model(name)
        language = config.language
        if language and language != "en" and not model.model.is_multilingual:
            raise EngineError(
                f"model {name!r} is English-only and cannot transcribe language {language!r}; "
                "choose a multilingual model or omit the language",
                retryable=False,
            )

        prepared = read_input(store, task, "prepare", PrepareOutput)
        channel = config.channel
        if channel is None:
            audio_key = prepared.audio_key
        elif 0 <= channel < len(prepared.channel_keys):
            audio_key = prepared.channel_keys[channel]
        else:
            raise EngineError(f"channel {channel} does not exist (audio has {prepared.channels})", retryable=False)
        path = workdir / "audio.wav"
        store.get_file(audio_key, path)
        audio, rate = read_wav(path)
        if rate != TARGET_RATE or audio.ndim != 1:
            raise EngineError(f"{audio_key} is not 16 kHz mono (rate={rate}, shape={audio.shape})", retryable=False)

        task_kind = config.task
        if task_kind == "translate" and not model.model.is_multilingual:
            raise EngineError(f"model {name!r} is English-only and cannot translate; use a multilingual model", retryable=False)

        options: dict[str, Any] = {}
        if config.temperature is not None:
            options["temperature"] = config.temperature
        if config.hotwords:
            # Unlike initial_prompt (first window only), hotwords prefix every window's prompt.
            options["hotwords"] = config.hotwords
        began = time.perf_counter()
        segments, info = model.transcribe(
            audio,
            language=language,
            task=task_kind,
            beam_size=self.settings.whisper_beam_size,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            initial_prompt=config.prompt,
            **options,
        )
        # `segments` is lazy: decoding happens while iterating.
        segments = [_segment(s, channel) for s in segments]
        elapsed = time.perf_counter() - began

        # When the caller forces a language the library reports probability 1, which is the
        # caller's choice, not a model estimate: report none. An English-only model can emit
        # nothing but English, so its 1.0 is a fact about the model and is kept.
        detected = model.model.is_multilingual and not language
        forced = bool(language) and model.model.is_multilingual
        output = TranscribeOutput(
            language=info.language,
            language_probability=None if forced else info.language_probability,
            duration=info.duration,
            segments=segments,
            model=name,
            channel=channel,
            details={
                "engine_id": self.engine_id,
                "model": name,
                "device": self.settings.whisper_device,
                "compute_type": self.settings.whisper_compute_type,
                "beam_size": self.settings.whisper_beam_size,
                "language_detected": detected,
                "task": task_kind,
                "processing_seconds": round(elapsed, 3),
                # Processing time over audio time: below 1 is faster than realtime.
                "realtime_factor": round(elapsed / info.duration, 4) if info.duration else None,
            },
        )
        return write_output(store, task, output)


def _segment(s, channel: int | None) -> Segment:
    return Segment(
        id=s.id,
        start=s.start,
        end=s.end,
        text=s.text.strip(),
        words=[
            Word(text=w.word.strip(), start=w.start, end=w.end, probability=w.probability, channel=channel) for w in s.words or []
        ],
        channel=channel,
        seek=s.seek,
        avg_logprob=s.avg_logprob,
        no_speech_prob=s.no_speech_prob,
        compression_ratio=s.compression_ratio,
        temperature=s.temperature,
        tokens=s.tokens,
    )
