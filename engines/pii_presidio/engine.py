"""pii-presidio: finds the entities of `DetectConfig.entity_types` in the assembled
transcript (engines.assembly), offsets into its text, times from its words."""

from __future__ import annotations

import time
from pathlib import Path

from engines.assembly import transcript_from_inputs
from engines.base import EngineError, config_of, write_output
from shared.contracts import DetectConfig, DetectOutput, TaskMessage
from shared.entities import ENTITY_TYPES
from shared.pii.detect import SPACY_MODEL, Detector, to_entities
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore


class PresidioEngine:
    engine_id = "pii-presidio"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        regions = tuple(r.strip().upper() for r in self.settings.pii_phone_regions.split(",") if r.strip())
        self.detector = Detector(phone_regions=regions or ("US",))

    def load(self) -> None:
        self.detector.load()
        self.detector.find("Warm-up call from Margaret on 415 267 3842.", list(ENTITY_TYPES))

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, DetectConfig)
        types = list(ENTITY_TYPES) if config.entity_types is None else config.entity_types
        unknown = [t for t in types if t not in ENTITY_TYPES]
        if unknown:
            raise EngineError(f"unknown entity types {unknown}; known: {', '.join(ENTITY_TYPES)}", retryable=False)
        transcript = transcript_from_inputs(store, task)
        began = time.perf_counter()
        entities = to_entities(transcript, self.detector.find(transcript.text, types))
        elapsed = time.perf_counter() - began
        output = DetectOutput(
            entities=entities,
            details={
                "engine_id": self.engine_id,
                "model": SPACY_MODEL,
                "entity_types": types,
                "phone_regions": list(self.detector.phone_regions),
                "entities": len(entities),
                "processing_seconds": round(elapsed, 3),
            },
        )
        return write_output(store, task, output)
