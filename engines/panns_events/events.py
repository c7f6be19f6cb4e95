"""From an AudioSet tagger's frame probabilities to timed events (pure)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from shared.audio_events import EVENT_TYPES
from shared.transcript import AudioEvent

MERGE_GAP_S = 0.3  # two spans of one event closer than this are one event


def read_labels(path: Path) -> list[str]:
    """The class ids (mids) of AudioSet's class_labels_indices.csv, in index order."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"index", "mid"} <= set(rows[0]):
        raise ValueError(f"{path} is not AudioSet's class_labels_indices.csv (columns index,mid,display_name)")
    mids = [row["mid"] for row in sorted(rows, key=lambda r: int(r["index"]))]
    if [int(r["index"]) for r in sorted(rows, key=lambda r: int(r["index"]))] != list(range(len(mids))):
        raise ValueError(f"{path}: class indices are not 0..{len(mids) - 1}")
    return mids


def event_columns(mids: list[str]) -> dict[str, list[int]]:
    """For every reported event type, the model's output columns it gathers (types the
    label file has none of are left out)."""
    index = {mid: i for i, mid in enumerate(mids)}
    columns = {t.id: [index[m] for m in t.mids if m in index] for t in EVENT_TYPES.values()}
    return {event: cols for event, cols in columns.items() if cols}


def find_events(
    framewise: np.ndarray,
    frame_rate: float,
    columns: dict[str, list[int]],
    *,
    threshold: float,
    min_duration_s: float,
) -> list[AudioEvent]:
    """Events from `(frames, classes)` probabilities: per event type, the maximum over its
    classes; a span opens where that reaches `threshold` and closes where it falls below half
    of it; spans closer than MERGE_GAP_S join, and shorter than `min_duration_s` are dropped."""
    events: list[AudioEvent] = []
    for event, cols in columns.items():
        scores = framewise[:, cols].max(axis=1)
        for first, last in _spans(scores, threshold, threshold / 2, int(MERGE_GAP_S * frame_rate)):
            start, end = first / frame_rate, (last + 1) / frame_rate
            if end - start < min_duration_s:
                continue
            confidence = float(scores[first : last + 1].max())
            events.append(AudioEvent(type=event, start=round(start, 3), end=round(end, 3), confidence=round(confidence, 3)))
    return sorted(events, key=lambda e: (e.start, e.end, e.type))


def _spans(scores: np.ndarray, onset: float, offset: float, max_gap: int) -> list[tuple[int, int]]:
    """Inclusive frame ranges: from a frame ≥ onset, extended both ways while ≥ offset."""
    spans: list[tuple[int, int]] = []
    above = scores >= offset
    i, n = 0, len(scores)
    while i < n:
        if scores[i] < onset:
            i += 1
            continue
        first = i
        while first > 0 and above[first - 1]:
            first -= 1
        last = i
        while last + 1 < n and above[last + 1]:
            last += 1
        if spans and first - spans[-1][1] - 1 <= max_gap:
            spans[-1] = (spans[-1][0], last)
        else:
            spans.append((first, last))
        i = last + 1
    return spans
