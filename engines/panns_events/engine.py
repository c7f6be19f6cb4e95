"""panns-events: non-speech audio events (laughter, applause, music, ...) with their times,
from PANNs' CNN14 sound event detector (AudioSet, 527 classes, 100 frames a second).

`DALSTON_EVENTS_MODEL` is a local directory with a `Cnn14_DecisionLevelMax` checkpoint
(`*.pth`, e.g. Cnn14_DecisionLevelMax_mAP=0.385.pth from the PANNs release) and AudioSet's
`class_labels_indices.csv`. Nothing is downloaded: without them the engine fails every task
with a message naming what is missing (and the gateway refuses `detect_events` up front).
The original upload is decoded at the model's 32 kHz (prepare's 16 kHz copy has lost the upper
band the model listens to), mixed down, and scored in windows to bound memory.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from engines.base import EngineError, config_of, write_output
from engines.panns_events.events import event_columns, find_events, read_labels
from shared.audio import AudioError, decode
from shared.contracts import EventsConfig, EventsOutput, TaskMessage
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore

log = structlog.get_logger()

SAMPLE_RATE = 32_000  # what CNN14 was trained on
FRAME_RATE = 100.0  # its framewise output: hop 320 samples at 32 kHz
WINDOW_S = 30  # seconds scored at once
LABELS_FILE = "class_labels_indices.csv"


class PannsEventsEngine:
    engine_id = "panns-events"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._model: Any = None
        self._columns: dict[str, list[int]] = {}
        self._checkpoint: Path | None = None
        self._device = "cpu"

    def load(self) -> None:
        try:
            self.model()
        except EngineError as exc:
            log.error("events_model_unavailable", error=exc.message)

    def files(self) -> tuple[Path, Path]:
        """The configured checkpoint and label file; EngineError naming what is missing."""
        source = self.settings.events_model
        if not source:
            raise EngineError(
                "panns-events has no model configured: set DALSTON_EVENTS_MODEL to a directory holding a PANNs "
                f"Cnn14_DecisionLevelMax checkpoint (*.pth) and AudioSet's {LABELS_FILE}",
                retryable=False,
            )
        directory = Path(source)
        if not directory.is_dir():
            raise EngineError(f"panns-events model directory {source} does not exist (DALSTON_EVENTS_MODEL)", retryable=False)
        checkpoints = sorted(directory.glob("*.pth"))
        if len(checkpoints) != 1:
            found = ", ".join(p.name for p in checkpoints) or "none"
            raise EngineError(f"{source} must hold exactly one *.pth checkpoint (found: {found})", retryable=False)
        labels = directory / LABELS_FILE
        if not labels.is_file():
            raise EngineError(f"{source} has no {LABELS_FILE} (AudioSet's label file)", retryable=False)
        return checkpoints[0], labels

    def model(self) -> Any:
        if self._model is not None:
            return self._model
        checkpoint, labels_path = self.files()
        try:
            mids = read_labels(labels_path)
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError(f"cannot read {labels_path}: {exc}", retryable=False) from exc
        columns = event_columns(mids)
        if not columns:
            raise EngineError(f"{labels_path} names none of the AudioSet classes events are made of", retryable=False)
        _place_labels_for_panns(labels_path)
        try:
            import torch
            from panns_inference.models import Cnn14_DecisionLevelMax
        except ImportError as exc:
            raise EngineError(
                f"panns-inference is not installed: pip install 'dalston[events]' ({exc})", retryable=False
            ) from exc
        model = Cnn14_DecisionLevelMax(
            sample_rate=SAMPLE_RATE, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=len(mids)
        )
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            model.load_state_dict(state["model"] if "model" in state else state)
        except Exception as exc:
            raise EngineError(f"cannot load {checkpoint} as a Cnn14_DecisionLevelMax checkpoint: {exc}", retryable=False) from exc
        self._model, self._columns, self._checkpoint, self._device = model.to(device).eval(), columns, checkpoint, device
        return self._model

    def framewise(self, audio: np.ndarray) -> np.ndarray:
        """`(frames, classes)` probabilities of mono 32 kHz `audio`, scored window by window."""
        import torch

        model = self.model()
        step = WINDOW_S * SAMPLE_RATE
        hop = int(SAMPLE_RATE / FRAME_RATE)
        parts = []
        with torch.inference_mode():
            for first in range(0, len(audio), step):
                window = audio[first : first + step]
                if len(window) < hop * 32:  # the model pools 32 frames; pad a short tail
                    window = np.pad(window, (0, hop * 32 - len(window)))
                out = model(torch.from_numpy(np.ascontiguousarray(window))[None].to(self._device), None)
                frames = min(out["framewise_output"].shape[1], int(np.ceil(len(audio[first : first + step]) / hop)))
                parts.append(out["framewise_output"][0, :frames].float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, EventsConfig)
        self.model()
        original = workdir / f"original{Path(task.audio_key).suffix}"
        store.get_file(task.audio_key, original)
        try:
            audio, _ = decode(original, target_rate=SAMPLE_RATE)
        except AudioError as exc:
            raise EngineError(f"cannot decode audio: {exc}", retryable=False) from exc
        began = time.perf_counter()
        probabilities = self.framewise(audio.mean(axis=1))
        events = find_events(
            probabilities, FRAME_RATE, self._columns, threshold=config.threshold, min_duration_s=config.min_duration_s
        )
        output = EventsOutput(
            events=events,
            details={
                "engine_id": self.engine_id,
                "model": self._checkpoint.name if self._checkpoint else None,
                "threshold": config.threshold,
                "events": len(events),
                "processing_seconds": round(time.perf_counter() - began, 3),
            },
        )
        return write_output(store, task, output)


def _place_labels_for_panns(labels: Path) -> None:
    # Importing panns_inference reads ~/panns_data/class_labels_indices.csv and, when that is
    # missing, shells out to wget for it; give it the configured copy instead.
    target = Path.home() / "panns_data" / LABELS_FILE
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(labels, target)
