"""Enrichment cost against transcription, on the same ~10-minute file.

    .venv/bin/python -m bench.enrichment_rtf

Concatenates the PII call and long fixtures to ~10 minutes, transcribes with faster-whisper
tiny.en as the engine does (word timestamps, default settings), then times PII detection
(pii-presidio's detector and word snapping) and audio redaction (engines.audio_redactor,
when present) and audio event scoring (panns-events' CNN14 over the whole file at 32 kHz, when the `events`
extra is installed: with DALSTON_EVENTS_MODEL's weights, else a checkpoint of the same
architecture with random weights, whose cost is the same), and prints each stage's time and
its ratio to transcription.
Target (issue 12): detection + audio redaction <= 0.10 of transcription.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"
SOURCES = ["pii_call_en.wav", "pii_call2_en.wav", "long_en.wav", "conversation_en.wav"]
TARGET_S = 600.0
RATE = 16000


def main() -> None:
    from faster_whisper import decode_audio

    from bench.speech import transcribe
    from shared import model_registry
    from shared.entities import ENTITY_TYPES
    from shared.pii.detect import Detector, to_entities
    from shared.settings import get_settings

    clips = [decode_audio(str(FIXTURES / name), sampling_rate=RATE) for name in SOURCES]
    pieces: list[np.ndarray] = []
    while sum(len(p) for p in pieces) < TARGET_S * RATE:
        pieces += clips
    audio = np.concatenate(pieces)[: int(TARGET_S * RATE)].astype(np.float32)
    duration = len(audio) / RATE

    settings = get_settings()
    model = model_registry.load_whisper(model_registry.resolve(None, settings), settings)
    began = time.perf_counter()
    transcript = transcribe(model, audio, settings.whisper_beam_size)
    transcribe_s = time.perf_counter() - began

    detector = Detector()
    detector.load()
    detector.find("Warm-up from Margaret on 415 267 3842.", list(ENTITY_TYPES))
    began = time.perf_counter()
    entities = to_entities(transcript, detector.find(transcript.text, list(ENTITY_TYPES)))
    detect_s = time.perf_counter() - began

    redact_s: float | None = None
    try:
        from engines.audio_redactor import redact
    except ImportError:
        redact = None  # type: ignore[assignment]
    if redact is not None:
        spans = redact.merge_spans([(e.start, e.end) for e in entities], 0.1, duration)
        began = time.perf_counter()
        redact.apply(audio, RATE, spans, "beep")
        redact_s = time.perf_counter() - began

    events_s, events_weights = _events_seconds(audio)

    print(f"audio: {duration:.0f} s, {len(transcript.words)} words, {len(entities)} entities")
    print(
        f"transcription (faster-whisper tiny.en, {settings.whisper_device}): {transcribe_s:.2f} s  (RTF {transcribe_s / duration:.4f})"
    )
    print(f"pii detection: {detect_s:.3f} s  ratio {detect_s / transcribe_s:.4f}")
    if redact_s is None:
        print("redaction: not measured (engines.audio_redactor absent)")
    else:
        print(f"audio redaction (beep, 16 kHz mono): {redact_s:.3f} s  ratio {redact_s / transcribe_s:.4f}")
        total = (detect_s + redact_s) / transcribe_s
        print(f"detection + redaction: ratio {total:.4f}  (target <= 0.10: {'met' if total <= 0.10 else 'MISSED'})")
    if events_s is None:
        print("audio events: not measured (the `events` extra is not installed)")
    else:
        print(
            f"audio events (CNN14 SED, {events_weights}): {events_s:.2f} s  ratio {events_s / transcribe_s:.4f}"
            "  (runs beside the transcriber, not after it)"
        )


def _events_seconds(audio: np.ndarray) -> tuple[float | None, str]:
    """Time panns-events' scoring of `audio` (16 kHz mono), resampled to the model's 32 kHz."""
    import importlib.util
    import os
    import tempfile

    if importlib.util.find_spec("panns_inference") is None:
        return None, ""
    import soxr

    from engines.panns_events.engine import SAMPLE_RATE, PannsEventsEngine
    from shared.settings import Settings

    configured = os.environ.get("DALSTON_EVENTS_MODEL")
    with tempfile.TemporaryDirectory() as scratch:
        directory = configured or _random_panns(Path(scratch))
        engine = PannsEventsEngine(Settings(events_model=directory))
        engine.model()
        began = time.perf_counter()
        engine.framewise(soxr.resample(audio, RATE, SAMPLE_RATE))
        return time.perf_counter() - began, "trained weights" if configured else "random weights: cost only"


def _random_panns(directory: Path) -> str:
    import csv
    import os

    import torch

    from engines.panns_events.engine import LABELS_FILE, _place_labels_for_panns
    from shared.audio_events import EVENT_TYPES

    os.environ["HOME"] = str(directory)  # panns_inference's label copy goes here, not into the real home
    mids = [m for t in EVENT_TYPES.values() for m in t.mids]
    with (directory / LABELS_FILE).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows((i, mids[i] if i < len(mids) else f"/x/{i}", f"class {i}") for i in range(527))
    _place_labels_for_panns(directory / LABELS_FILE)
    from panns_inference.models import Cnn14_DecisionLevelMax

    model = Cnn14_DecisionLevelMax(
        sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527
    )
    torch.save({"model": model.state_dict()}, directory / "random.pth")
    return str(directory)


if __name__ == "__main__":
    main()
