"""Subtitle and plain-text renderings of a transcript: SRT, WebVTT, TXT, JSON.

Cues are built from word timestamps so a cue can be cut exactly where a line fills up.
A new cue starts at every segment boundary, at every speaker change, when the text would
need more than `max_lines` lines of `max_line_chars`, and at the optional duration,
character and silence limits. A word longer than a line gets a line of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.audio_events import EVENT_TYPES
from shared.transcript import Segment, Transcript


@dataclass
class _Unit:
    text: str
    start: float
    end: float
    speaker: str | None


@dataclass
class Cue:
    start: float
    end: float
    speaker: str | None
    words: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _segment_units(segment: Segment) -> list[_Unit]:
    if segment.words:
        return [_Unit(w.text.strip(), w.start, w.end, w.speaker or segment.speaker) for w in segment.words if w.text.strip()]
    # No word timings (an engine without them): spread the segment's span over its words by
    # character count, so long segments can still be cut into readable cues.
    tokens = segment.text.split()
    total = sum(len(t) for t in tokens) or 1
    span = max(segment.end - segment.start, 0.0)
    units, cursor = [], segment.start
    for token in tokens:
        end = cursor + span * len(token) / total
        units.append(_Unit(token, cursor, end, segment.speaker))
        cursor = end
    return units


def wrap(text_words: list[str], max_line_chars: int) -> list[str]:
    """Greedy word wrap; a word longer than the limit stands alone on its line."""
    lines: list[str] = []
    for word in text_words:
        if lines and len(lines[-1]) + 1 + len(word) <= max_line_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _label(speaker: str | None, include_speakers: bool) -> str:
    return f"[{speaker}] " if include_speakers and speaker else ""


def build_cues(
    t: Transcript,
    *,
    max_line_chars: int = 42,
    max_lines: int = 2,
    include_speakers: bool = True,
    max_segment_duration_s: float | None = None,
    max_segment_chars: int | None = None,
    segment_on_silence_longer_than_s: float | None = None,
) -> list[Cue]:
    if max_line_chars < 1 or max_lines < 1:
        raise ValueError("max_line_chars and max_lines must be at least 1")
    cues: list[Cue] = []
    for segment in t.segments:
        cue: Cue | None = None
        for unit in _segment_units(segment):
            if cue is not None:
                candidate = [*cue.words, unit.text]
                label = _label(cue.speaker, include_speakers)
                full = (
                    unit.speaker != cue.speaker
                    or len(wrap([label + candidate[0], *candidate[1:]], max_line_chars)) > max_lines
                    or (max_segment_duration_s is not None and unit.end - cue.start > max_segment_duration_s)
                    or (max_segment_chars is not None and len(" ".join(candidate)) > max_segment_chars)
                    or (segment_on_silence_longer_than_s is not None and unit.start - cue.end > segment_on_silence_longer_than_s)
                )
                if not full:
                    cue.words.append(unit.text)
                    cue.end = max(cue.end, unit.end)
                    continue
                cues.append(cue)
            cue = Cue(unit.start, max(unit.end, unit.start), unit.speaker, [unit.text])
        if cue is not None:
            cues.append(cue)
    return cues


def with_events(cues: list[Cue], t: Transcript) -> list[Cue]:
    """Subtitle cues plus one "(laughter)" cue per audio event, as subtitles for the deaf and
    hard of hearing show sounds; cues may overlap, which SRT and WebVTT players handle."""
    if not t.audio_events:
        return cues
    events = [Cue(e.start, e.end, None, [EVENT_TYPES[e.type].tag]) for e in t.audio_events if e.type in EVENT_TYPES]
    return sorted(cues + events, key=lambda c: (c.start, c.end))


def _cue_lines(cue: Cue, max_line_chars: int, label: str) -> list[str]:
    # The label counts toward the first line's length because it is displayed.
    return wrap([label + cue.words[0], *cue.words[1:]], max_line_chars)


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(round(seconds * 1000), 0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def srt_timestamp(seconds: float) -> str:
    return _timestamp(seconds, ",")


def vtt_timestamp(seconds: float) -> str:
    return _timestamp(seconds, ".")


def to_srt(
    t: Transcript,
    *,
    max_line_chars: int = 42,
    max_lines: int = 2,
    include_speakers: bool = True,
    max_segment_duration_s: float | None = None,
    max_segment_chars: int | None = None,
    segment_on_silence_longer_than_s: float | None = None,
) -> str:
    cues = build_cues(
        t,
        max_line_chars=max_line_chars,
        max_lines=max_lines,
        include_speakers=include_speakers,
        max_segment_duration_s=max_segment_duration_s,
        max_segment_chars=max_segment_chars,
        segment_on_silence_longer_than_s=segment_on_silence_longer_than_s,
    )
    blocks = []
    for number, cue in enumerate(with_events(cues, t), start=1):
        lines = _cue_lines(cue, max_line_chars, _label(cue.speaker, include_speakers))
        blocks.append(f"{number}\n{srt_timestamp(cue.start)} --> {srt_timestamp(cue.end)}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(
    t: Transcript,
    *,
    max_line_chars: int = 42,
    max_lines: int = 2,
    include_speakers: bool = True,
    max_segment_duration_s: float | None = None,
    max_segment_chars: int | None = None,
    segment_on_silence_longer_than_s: float | None = None,
) -> str:
    # Speakers use WebVTT voice spans (`<v name>`), which players show as a label; the
    # label still counts toward the line length so the wrap matches what is displayed.
    cues = build_cues(
        t,
        max_line_chars=max_line_chars,
        max_lines=max_lines,
        include_speakers=include_speakers,
        max_segment_duration_s=max_segment_duration_s,
        max_segment_chars=max_segment_chars,
        segment_on_silence_longer_than_s=segment_on_silence_longer_than_s,
    )
    blocks = ["WEBVTT\n"]
    for cue in with_events(cues, t):
        label = _label(cue.speaker, include_speakers)
        lines = [_vtt_escape(line) for line in _cue_lines(cue, max_line_chars, label)]
        if label:
            lines[0] = f"<v {cue.speaker}>" + lines[0][len(_vtt_escape(label)) :]
        blocks.append(f"{vtt_timestamp(cue.start)} --> {vtt_timestamp(cue.end)}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def speaker_runs(segment: Segment) -> list[tuple[float, float, str | None, str]]:
    """A segment split at speaker changes: (start, end, speaker, text)."""
    units = _segment_units(segment)
    if len({u.speaker for u in units}) <= 1:
        speaker = units[0].speaker if units else segment.speaker
        return [(segment.start, segment.end, speaker, segment.text.strip())]
    runs: list[tuple[float, float, str | None, str]] = []
    for unit in units:
        if runs and runs[-1][2] == unit.speaker:
            start, _, speaker, text = runs[-1]
            runs[-1] = (start, unit.end, speaker, f"{text} {unit.text}")
        else:
            runs.append((unit.start, unit.end, unit.speaker, unit.text))
    return runs


def to_txt(t: Transcript, *, include_speakers: bool = True, include_timestamps: bool = False) -> str:
    """Plain text; with speakers one paragraph per speaker turn, with timestamps one line per segment."""
    runs = [run for segment in t.segments for run in speaker_runs(segment) if run[3]]
    has_speakers = include_speakers and any(run[2] for run in runs)
    if not has_speakers and not include_timestamps:
        return t.text.strip() + "\n" if t.text.strip() else ""

    lines: list[tuple[float, float, str | None, str]] = []
    for start, end, speaker, text in runs:
        speaker = speaker if has_speakers else None
        if lines and not include_timestamps and lines[-1][2] == speaker:
            # Consecutive runs of one speaker are one turn.
            lines[-1] = (lines[-1][0], end, speaker, f"{lines[-1][3]} {text}")
        else:
            lines.append((start, end, speaker, text))
    rendered = []
    for start, end, speaker, text in lines:
        prefix = f"[{vtt_timestamp(start)} --> {vtt_timestamp(end)}] " if include_timestamps else ""
        label = f"{speaker}: " if speaker else ""
        rendered.append(prefix + label + text)
    return "\n".join(rendered) + "\n"


def to_json(t: Transcript) -> dict[str, Any]:
    """The canonical transcript itself, as JSON-ready data."""
    return t.model_dump(mode="json")
