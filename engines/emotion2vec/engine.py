"""emotion2vec: the emotion of each transcript segment, from its audio, with emotion2vec+
through FunASR (9 classes: angry, disgusted, fearful, happy, neutral, other, sad, surprised,
unknown).

`DALSTON_EMOTION_MODEL` is a local emotion2vec+ directory in FunASR's layout (config.yaml,
model.pt, tokens.txt; e.g. a copy of emotion2vec/emotion2vec_plus_base). Nothing is
downloaded: without it the engine fails every task with a message naming what is missing
(and the gateway refuses `detect_emotions` up front). Segments are cut from prepare's 16 kHz
audio, from their own channel in per-channel jobs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from engines.assembly import transcript_from_inputs
from engines.base import EngineError, config_of, read_input, write_output
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import EmotionsConfig, EmotionsOutput, PrepareOutput, SegmentEmotion, TaskMessage
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore
from shared.transcript import Emotion, Segment

log = structlog.get_logger()

MIN_SEGMENT_S = 0.3  # shorter clips carry too little voice to judge
MAX_SEGMENT_S = 30.0  # longer ones are judged on their first 30 s (memory stays bounded)
REQUIRED_FILES = ("config.yaml", "model.pt")


def label_of(raw: str) -> str:
    """emotion2vec's bilingual class names ("生气/angry", "<unk>") as plain English ids."""
    english = raw.rsplit("/", 1)[-1].strip().lower()
    return "unknown" if english in ("<unk>", "unk", "") else english


def emotion_of(labels: list[str], scores: list[float]) -> Emotion:
    by_label: dict[str, float] = {}
    for raw, score in zip(labels, scores):
        label = label_of(raw)
        by_label[label] = round(by_label.get(label, 0.0) + float(score), 4)
    if not by_label:
        raise EngineError("emotion2vec returned no class scores (is the model an emotion2vec+ classifier?)", retryable=False)
    best = max(by_label, key=lambda k: by_label[k])
    return Emotion(label=best, confidence=by_label[best], scores=by_label)


def clip_of(audio: np.ndarray, segment: Segment) -> np.ndarray | None:
    first = max(0, int(segment.start * TARGET_RATE))
    last = min(len(audio), int(min(segment.end, segment.start + MAX_SEGMENT_S) * TARGET_RATE))
    if last - first < MIN_SEGMENT_S * TARGET_RATE:
        return None
    return audio[first:last]


class Emotion2vecEngine:
    engine_id = "emotion2vec"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._model: Any = None

    def load(self) -> None:
        try:
            self.model()
        except EngineError as exc:
            log.error("emotion_model_unavailable", error=exc.message)

    def model(self) -> Any:
        if self._model is not None:
            return self._model
        source = self.settings.emotion_model
        if not source:
            raise EngineError(
                "emotion2vec has no model configured: set DALSTON_EMOTION_MODEL to a local emotion2vec+ directory "
                "(config.yaml, model.pt, tokens.txt; e.g. a copy of emotion2vec/emotion2vec_plus_base)",
                retryable=False,
            )
        directory = Path(source)
        missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
        if missing:
            raise EngineError(f"{source} is not an emotion2vec+ model directory: no {', '.join(missing)}", retryable=False)
        try:
            import torch
            from funasr import AutoModel
        except ImportError as exc:
            raise EngineError(f"funasr is not installed: pip install 'dalston[emotion]' ({exc})", retryable=False) from exc
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            # A local directory: FunASR reads it and skips its hubs; disable_update skips the version check.
            self._model = AutoModel(model=str(directory), device=device, disable_update=True, log_level="ERROR")
        except Exception as exc:
            raise EngineError(f"cannot load emotion2vec model {source!r}: {exc}", retryable=False) from exc
        return self._model

    def classify(self, clip: np.ndarray) -> Emotion:
        results = self.model().generate(clip.astype(np.float32), granularity="utterance", extract_embedding=False)
        if not results:
            raise EngineError("emotion2vec returned no result for a segment", retryable=True)
        return emotion_of(list(results[0].get("labels", [])), list(results[0].get("scores", [])))

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config_of(task, EmotionsConfig)
        self.model()
        prepared = read_input(store, task, "prepare", PrepareOutput)
        transcript = transcript_from_inputs(store, task)
        tracks: dict[int | None, np.ndarray] = {}

        def track(channel: int | None) -> np.ndarray:
            if channel not in tracks:
                key = prepared.audio_key if channel is None else prepared.channel_keys[channel]
                path = workdir / f"track_{channel}.wav"
                store.get_file(key, path)
                tracks[channel] = read_wav(path)[0]
            return tracks[channel]

        began = time.perf_counter()
        found: list[SegmentEmotion] = []
        skipped = 0
        for segment in transcript.segments:
            clip = clip_of(track(segment.channel), segment) if segment.text.strip() else None
            if clip is None:
                skipped += 1
                continue
            found.append(SegmentEmotion(segment=segment.id, emotion=self.classify(clip)))
        output = EmotionsOutput(
            segments=found,
            details={
                "engine_id": self.engine_id,
                "model": Path(self.settings.emotion_model or "").name,
                "segments": len(found),
                "skipped_segments": skipped,
                "processing_seconds": round(time.perf_counter() - began, 3),
            },
        )
        return write_output(store, task, output)
