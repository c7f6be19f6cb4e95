"""whisperx-full: transcribe, (align) and diarize in one task, one process, models loaded once.

The WhisperX recipe — faster-whisper, then wav2vec2 alignment, then diarization — run
by the same stage engines the modular pipeline uses, called in-process on sub-tasks
whose outputs land under this task's prefix. Merge then builds the same transcript as
from the modular chain. Alignment stays optional here too: if it fails, the result keeps
the transcriber's timestamps and carries a warning. A diarization failure fails the task.
"""

from __future__ import annotations

from pathlib import Path

from engines.base import Engine, EngineError, config_of, create, write_output
from shared.catalogue import DEFAULT_ENGINES, Stage
from shared.contracts import (
    AlignConfig,
    AlignOutput,
    DiarizeOutput,
    IntegratedConfig,
    IntegratedOutput,
    TaskConfig,
    TaskMessage,
    TranscribeOutput,
)
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore


class WhisperXFullEngine:
    engine_id = "whisperx-full"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        engines = {**DEFAULT_ENGINES, **self.settings.stage_engines}
        # Its own transcriber: DALSTON_STAGE_ENGINES may name this engine for the transcribe stage.
        self.transcriber = create(DEFAULT_ENGINES[Stage.TRANSCRIBE])
        self.diarizer = create(engines[Stage.DIARIZE])
        self.aligner = create(engines[Stage.ALIGN])

    def load(self) -> None:
        self.transcriber.load()
        self.diarizer.load()
        if self.settings.align_model:
            self.aligner.load()

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, IntegratedConfig)
        transcribe_key = self._run(self.transcriber, task, Stage.TRANSCRIBE, task.inputs, config.transcribe, store, workdir)
        transcribed = TranscribeOutput.model_validate_json(store.get_bytes(transcribe_key))
        warnings: list[str] = []
        aligned = None
        if config.align:
            inputs = {**task.inputs, "transcribe": transcribe_key}
            try:
                key = self._run(self.aligner, task, Stage.ALIGN, inputs, AlignConfig(), store, workdir)
                aligned = AlignOutput.model_validate_json(store.get_bytes(key))
            except EngineError as exc:
                warnings.append(f"align ({self.aligner.engine_id}) failed, continuing without it: {exc.message}")
        diarized = None
        if config.diarize is not None:
            key = self._run(self.diarizer, task, Stage.DIARIZE, task.inputs, config.diarize, store, workdir)
            diarized = DiarizeOutput.model_validate_json(store.get_bytes(key))
        return write_output(
            store, task, IntegratedOutput(transcribe=transcribed, align=aligned, diarize=diarized, warnings=warnings)
        )

    @staticmethod
    def _run(
        engine: Engine,
        task: TaskMessage,
        stage: Stage,
        inputs: dict[str, str],
        config: TaskConfig,
        store: ObjectStore,
        workdir: Path,
    ) -> str:
        sub = task.model_copy(
            update={
                "name": stage.value,
                "stage": stage,
                "inputs": inputs,
                "config": config,
                "output_prefix": f"{task.output_prefix}{stage}/",
            }
        )
        stage_dir = workdir / stage.value
        stage_dir.mkdir()
        return engine.process(sub, store, stage_dir)
