"""Diarization with the pyannote.audio 4 pipeline.

The model comes from configuration: `DALSTON_PYANNOTE_MODEL` is a local directory (a
downloaded `pyannote/speaker-diarization-community-1`, say) or a hub id, fetched with
`DALSTON_HF_TOKEN`. pyannote.audio pins its own torch, so it lives in the `pyannote`
extra and its own image. Loading is retried on every task until it succeeds, so weights
put in place later are picked up without a restart; until then each task fails with the
reason and what to do about it.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from engines.base import EngineError, config_of, read_input, write_output
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import DiarizeConfig, DiarizeOutput, PrepareOutput, SpeakerTurn, TaskMessage
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore

log = structlog.get_logger()


class PyannoteEngine:
    engine_id = "pyannote-4.0"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._pipeline = None

    def load(self) -> None:
        try:
            self.pipeline()
        except EngineError as exc:
            # Stay up and report the reason on each task instead of crash-looping.
            log.error("pyannote_pipeline_unavailable", error=exc.message)

    def pipeline(self):
        if self._pipeline is not None:
            return self._pipeline
        source = self.settings.pyannote_model
        if not source:
            raise EngineError(
                "pyannote-4.0 has no model configured: set DALSTON_PYANNOTE_MODEL to a local directory holding "
                "pyannote/speaker-diarization-community-1 (or a hub id plus DALSTON_HF_TOKEN)",
                retryable=True,
            )
        if source.startswith(("/", ".")) and not Path(source).exists():
            raise EngineError(
                f"pyannote-4.0 model directory {source} does not exist: download the pipeline there "
                "(huggingface-cli download pyannote/speaker-diarization-community-1 --local-dir ...) "
                "or point DALSTON_PYANNOTE_MODEL elsewhere",
                retryable=True,
            )
        try:
            from pyannote.audio import Pipeline
        except ImportError as exc:
            raise EngineError(
                f"pyannote.audio is not installed: pip install 'dalston[pyannote]' ({exc})", retryable=True
            ) from exc
        try:
            pipeline = Pipeline.from_pretrained(source, token=self.settings.hf_token)
        except Exception as exc:
            raise EngineError(f"cannot load pyannote pipeline {source!r}: {exc}", retryable=True) from exc
        if pipeline is None:  # pyannote returns None for gated models without access
            raise EngineError(
                f"pyannote pipeline {source!r} is gated: accept its conditions and set DALSTON_HF_TOKEN", retryable=True
            )
        self._pipeline = pipeline
        return pipeline

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        pipeline = self.pipeline()
        import torch

        prepared = read_input(store, task, "prepare", PrepareOutput)
        path = workdir / "audio.wav"
        store.get_file(prepared.audio_key, path)
        audio, rate = read_wav(path)
        speakers = config_of(task, DiarizeConfig)
        options = speakers.model_dump(include={"num_speakers", "min_speakers", "max_speakers"}, exclude_none=True)
        began = time.perf_counter()
        result = pipeline({"waveform": torch.from_numpy(audio[None, :]).float(), "sample_rate": rate}, **options)
        # pyannote 4 returns DiarizeOutput-like objects; 3.x an Annotation.
        annotation = getattr(result, "exclusive_speaker_diarization", None) or getattr(result, "speaker_diarization", result)
        names: dict[str, str] = {}
        turns = [
            SpeakerTurn(
                speaker=names.setdefault(label, f"speaker_{len(names)}"), start=round(seg.start, 3), end=round(seg.end, 3)
            )
            for seg, _, label in annotation.itertracks(yield_label=True)
        ]
        elapsed = time.perf_counter() - began
        duration = len(audio) / TARGET_RATE
        return write_output(
            store,
            task,
            DiarizeOutput(
                turns=turns,
                num_speakers=len(names),
                duration=duration,
                details={
                    "engine_id": self.engine_id,
                    "model": self.settings.pyannote_model,
                    "processing_seconds": round(elapsed, 3),
                },
            ),
        )
