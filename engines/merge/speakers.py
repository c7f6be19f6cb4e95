"""Speaker assignment: diarization turns onto transcribed words and segments. Pure functions.

A word takes the speaker whose turn overlaps it most; a word in a gap between turns takes
the nearest turn's speaker. A segment whose words change speaker is cut at each change, so
every segment has one speaker. Words are never dropped or reordered.
"""

from __future__ import annotations

from shared.contracts import SpeakerTurn
from shared.transcript import Segment, Word


def speaker_at(start: float, end: float, turns: list[SpeakerTurn]) -> str | None:
    """The speaker of the turn overlapping [start, end] most, else of the nearest turn."""
    if not turns:
        return None
    best = max(turns, key=lambda t: min(end, t.end) - max(start, t.start))
    if min(end, best.end) - max(start, best.start) > 0:
        return best.speaker
    # No overlap: distance from the interval to each turn (0 when one touches it).
    return min(turns, key=lambda t: max(t.start - end, start - t.end, 0.0)).speaker


def assign_speakers(segments: list[Segment], turns: list[SpeakerTurn]) -> list[Segment]:
    """Segments with speakers on every word, split where the speaker changes; ids renumbered."""
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            out.append(segment.model_copy(update={"speaker": speaker_at(segment.start, segment.end, turns)}))
            continue
        words = [w.model_copy(update={"speaker": speaker_at(w.start, w.end, turns)}) for w in segment.words]
        groups: list[list[Word]] = []
        for word in words:
            if groups and groups[-1][-1].speaker == word.speaker:
                groups[-1].append(word)
            else:
                groups.append([word])
        if len(groups) == 1:
            out.append(segment.model_copy(update={"words": words, "speaker": words[0].speaker}))
            continue
        for i, group in enumerate(groups):
            out.append(
                segment.model_copy(
                    update={
                        "start": segment.start if i == 0 else group[0].start,
                        "end": segment.end if i == len(groups) - 1 else group[-1].end,
                        "text": " ".join(w.text for w in group),
                        "words": group,
                        "speaker": group[0].speaker,
                        # Decoder values stay those of the segment the part was cut from;
                        # its tokens cannot be divided between the parts.
                        "tokens": [],
                    }
                )
            )
    return [s.model_copy(update={"id": i}) for i, s in enumerate(out)]


def speaker_order(turns: list[SpeakerTurn]) -> list[str]:
    """Speakers in order of first appearance."""
    return list(dict.fromkeys(t.speaker for t in sorted(turns, key=lambda t: t.start)))
