"""Assemble the canonical `Transcript` from the stage outputs (engines.assembly) and fold in
the enrichment stages' (engines.merge.enrichment). A failed optional stage simply has no
input; the orchestrator's warning about it arrives in `MergeConfig.warnings` and is kept in
the transcript.
"""

from __future__ import annotations

from pathlib import Path

from engines.assembly import transcript_from_inputs
from engines.base import config_of, read_input, write_output
from engines.merge.enrichment import apply_enrichment
from shared.contracts import DetectOutput, EmotionsOutput, EventsOutput, MergeConfig, RedactOutput, RefineOutput, TaskMessage
from shared.storage import ObjectStore


class MergeEngine:
    engine_id = "merge"

    def load(self) -> None:
        pass  # no model

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        warnings = list(config_of(task, MergeConfig).warnings)
        transcript = transcript_from_inputs(store, task, warnings)
        transcript = apply_enrichment(
            transcript,
            detected=read_input(store, task, "detect", DetectOutput) if "detect" in task.inputs else None,
            refined=read_input(store, task, "refine", RefineOutput) if "refine" in task.inputs else None,
            redacted=read_input(store, task, "redact", RedactOutput) if "redact" in task.inputs else None,
            emotions=read_input(store, task, "emotions", EmotionsOutput) if "emotions" in task.inputs else None,
            events=read_input(store, task, "events", EventsOutput) if "events" in task.inputs else None,
        )
        return write_output(store, task, transcript)
