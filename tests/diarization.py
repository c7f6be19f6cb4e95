"""Scoring speaker detection against truth, for the tests and bench/diarize_eval.py
(import as `from diarization import ...`): RTTM reading, DER and word attribution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engines.merge.speakers import speaker_at
from shared.contracts import SpeakerTurn

DEV_SET = Path(__file__).parent / "fixtures" / "diarize_dev"


def dev_set(split: str | None = None) -> list[dict[str, Any]]:
    """The dev set's recordings (manifest entries), optionally one split ("tune" or "heldout")."""
    recordings = json.loads((DEV_SET / "manifest.json").read_text())["recordings"]
    return [r for r in recordings if split is None or r["split"] == split]


def read_rttm(path: Path) -> list[SpeakerTurn]:
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append(SpeakerTurn(speaker=fields[7], start=start, end=start + duration))
    return sorted(turns, key=lambda t: t.start)


def der(reference: list[SpeakerTurn], hypothesis: list[SpeakerTurn], collar: float = 0.0) -> float:
    """Diarization error rate (missed + false alarm + confusion over reference speech, overlaps
    scored) with a ±`collar` s forgiveness collar around reference boundaries, by pyannote.metrics
    (whose `collar` is the collar's full width)."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: list[SpeakerTurn]) -> Annotation:
        out = Annotation()
        for i, t in enumerate(turns):
            out[Segment(t.start, t.end), i] = t.speaker
        return out

    return float(DiarizationErrorRate(collar=2 * collar, skip_overlap=False)(annotation(reference), annotation(hypothesis)))


def attribution(reference: list[SpeakerTurn], words: list[tuple[float, float, str | None]]) -> float:
    """Share of words (start, end, speaker) whose speaker, mapped one-to-one onto the true
    speakers, said them. A word's true speaker is the reference turn overlapping it most (the
    nearest turn in a gap), as merge gives words their speakers."""
    from scipy.optimize import linear_sum_assignment

    if not words:
        return 0.0
    truth = [speaker_at(start, end, reference) for start, end, _ in words]
    true_names = sorted({t for t in truth if t})
    found_names = sorted({w[2] or "" for w in words})
    counts = np.zeros((len(true_names), len(found_names)))
    for t, (_, _, found) in zip(truth, words):
        if t:
            counts[true_names.index(t), found_names.index(found or "")] += 1
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(words))
