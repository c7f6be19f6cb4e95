"""whisperx-full: transcribe, (align) and diarize in one task, one process, models loaded once.

The WhisperX recipe — faster-whisper, then wav2vec2 alignment, then diarization — run
by the same stage engines the modular pipeline uses, called in-process on sub-tasks
whose outputs land under this task's prefix. Merge then builds the same transcript as
from the modular chain. Alignment stays optional here too: if it fails, the result keeps
the transcriber's timestamps and carries a warning. A diarization failure fails the task.
"""

from __future__ import annotations

from pathlib import Path

from engines.base import EngineError, write_output
from engines.registry import create
from shared.contracts import AlignOutput, DiarizeOutput, IntegratedOutput, TaskMessage, TranscribeOutput
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore


class WhisperXFullEngine:
    engine_id = "whisperx-full"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.transcriber = create("faster-whisper")
        self.diarizer = create(self.settings.stage_engines.get("diarize", "diarize-default"))
        self.aligner = create("phoneme-align")

    def load(self) -> None:
        self.transcriber.load()
        self.diarizer.load()
        if self.settings.align_model:
            self.aligner.load()

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = task.config
        transcribe_key = self._run(self.transcriber, task, "transcribe", task.inputs, config, store, workdir)
        transcribed = TranscribeOutput.model_validate_json(store.get_bytes(transcribe_key))

        warnings: list[str] = []
        aligned = None
        if config.get("align"):
            inputs = {**task.inputs, "transcribe": transcribe_key}
            try:
                key = self._run(self.aligner, task, "align", inputs, {}, store, workdir)
                aligned = AlignOutput.model_validate_json(store.get_bytes(key))
            except EngineError as exc:
                warnings.append(f"align ({self.aligner.engine_id}) failed, continuing without it: {exc.message}")

        diarized = None
        if config.get("diarize"):
            key = self._run(self.diarizer, task, "diarize", task.inputs, config.get("speakers", {}), store, workdir)
            diarized = DiarizeOutput.model_validate_json(store.get_bytes(key))

        return write_output(
            store, task, IntegratedOutput(transcribe=transcribed, align=aligned, diarize=diarized, warnings=warnings)
        )

    @staticmethod
    def _run(
        engine, task: TaskMessage, stage: str, inputs: dict[str, str], config: dict, store: ObjectStore, workdir: Path
    ) -> str:
        sub = task.model_copy(
            update={
                "name": stage,
                "stage": stage,
                "inputs": inputs,
                "config": config,
                "output_prefix": f"{task.output_prefix}{stage}/",
            }
        )
        stage_dir = workdir / stage
        stage_dir.mkdir()
        return engine.process(sub, store, stage_dir)
