"""Text redaction: a transcript whose detected entities are replaced by placeholders.

A pure function of the canonical transcript (its `entities` from the detect stage), used by
every surface that returns text when a request asked for redaction (ElevenLabs'
`entity_redaction`, native `redact_pii_text`): the response text, the word list, the
segments and every export read the redacted copy, so the original words cannot leak
through any of them.

Styles (ElevenLabs' `entity_redaction_mode`): `redacted` -> `{REDACTED}`, `entity_type` ->
`{PERSON_NAME}`, `enumerated_entity_type` -> `{PERSON_NAME_1}`, numbered per type in order
of appearance, the same entity text always getting the same number.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from shared.transcript import Entity, Segment, Transcript, Word

RedactionStyle = Literal["redacted", "entity_type", "enumerated_entity_type"]
STYLES: tuple[RedactionStyle, ...] = ("redacted", "entity_type", "enumerated_entity_type")
DEFAULT_STYLE: RedactionStyle = "enumerated_entity_type"  # ElevenLabs' default


def placeholder(style: RedactionStyle, entity_type: str, number: int = 1) -> str:
    if style == "redacted":
        return "{REDACTED}"
    name = entity_type.upper()
    return f"{{{name}}}" if style == "entity_type" else f"{{{name}_{number}}}"


def _identity(text: str) -> str:
    # "Margaret Smith," and "margaret smith" are the same person for numbering purposes.
    return re.sub(r"\W+", "", text.casefold())


@dataclass(frozen=True)
class _Span:
    entity: Entity
    label: str
    members: tuple[int, ...]  # indices into Transcript.words replaced by the placeholder word


def _chosen(t: Transcript, types: Collection[str] | None) -> list[Entity]:
    """The entities to redact, by position, overlaps dropped (the earlier one wins)."""
    chosen: list[Entity] = []
    for e in sorted(t.entities or [], key=lambda e: (e.start_char, -e.end_char)):
        if types is not None and e.type not in types:
            continue
        if not 0 <= e.start_char < e.end_char <= len(t.text):
            continue
        if chosen and e.start_char < chosen[-1].end_char:
            continue
        chosen.append(e)
    return chosen


def _members(t: Transcript, e: Entity) -> tuple[int, ...]:
    if not 0 <= e.first_word <= e.last_word < len(t.words):
        return ()
    # Per-channel transcripts interleave channels by time: only the entity's own channel's words.
    channel = t.words[e.first_word].channel
    return tuple(i for i in range(e.first_word, e.last_word + 1) if t.words[i].channel == channel)


def _spans(t: Transcript, chosen: list[Entity], style: RedactionStyle) -> list[_Span]:
    numbers: dict[str, dict[str, int]] = {}
    spans: list[_Span] = []
    claimed: set[int] = set()
    for e in chosen:
        per_type = numbers.setdefault(e.type, {})
        number = per_type.setdefault(_identity(e.text), len(per_type) + 1)
        members = tuple(i for i in _members(t, e) if i not in claimed)
        claimed.update(members)
        spans.append(_Span(e, placeholder(style, e.type, number), members))
    return spans


def _redact_text(text: str, base: int, spans: list[_Span]) -> str:
    """`text` (which starts at offset `base` of the transcript text) with the spans replaced;
    a span cut by the text's edge is removed, its placeholder stays where the span starts."""
    out, cursor, end = [], 0, len(text)
    for span in spans:
        start, stop = span.entity.start_char - base, span.entity.end_char - base
        if stop <= 0 or start >= end:
            continue
        out.append(text[cursor : max(start, cursor)])
        if start >= 0:
            out.append(span.label)
        cursor = min(stop, end)
    out.append(text[cursor:])
    return "".join(out)


def _placeholder_word(t: Transcript, span: _Span) -> Word:
    first, last = t.words[span.members[0]], t.words[span.members[-1]]
    return Word(text=span.label, start=first.start, end=max(last.end, first.start), speaker=first.speaker, channel=first.channel)


def _word_key(w: Word) -> tuple[float, float, str, int | None]:
    return (round(w.start, 3), round(w.end, 3), w.text.strip(), w.channel)


def _segment_offsets(t: Transcript) -> list[int | None]:
    """Where each segment's text starts in `t.text` (assembly joins stripped segment texts
    with one space); None for an empty segment or when the text does not line up."""
    offsets: list[int | None] = []
    cursor = 0
    for s in t.segments:
        stripped = s.text.strip()
        if not stripped:
            offsets.append(None)
            continue
        at = t.text.find(stripped, cursor)
        offsets.append(at if at >= 0 else None)
        if at >= 0:
            cursor = at + len(stripped)
    return offsets


def redact(t: Transcript, style: RedactionStyle = DEFAULT_STYLE, types: Collection[str] | None = None) -> Transcript:
    """A copy of `t` with its entities (of `types`; None: all) replaced by placeholders in
    the text, the words (one placeholder word spanning the entity's words), the segments
    and the summary. The remaining entities point into the redacted text and words, and
    the redacted ones become their placeholders (text = the placeholder)."""
    if not t.entities:
        return t
    chosen = _chosen(t, types)
    if not chosen:
        return t
    spans = _spans(t, chosen, style)

    text = _redact_text(t.text, 0, spans)

    # Words: each span's members collapse into one placeholder word at the first member's place.
    by_member = {i: span for span in spans for i in span.members}
    new_words: list[Word] = []
    new_index: dict[int, int] = {}  # old word index -> new (a member maps to its placeholder)
    placed: dict[int, int] = {}  # id(span) -> new index
    for i, w in enumerate(t.words):
        span = by_member.get(i)
        if span is None:
            new_index[i] = len(new_words)
            new_words.append(w)
            continue
        if id(span) not in placed:
            placed[id(span)] = len(new_words)
            new_words.append(_placeholder_word(t, span))
        new_index[i] = placed[id(span)]

    # Segments: their text by offsets into the transcript text, their words by identity.
    member_keys = {_word_key(t.words[i]): span for span in spans for i in span.members}
    segments: list[Segment] = []
    for segment, offset in zip(t.segments, _segment_offsets(t), strict=True):
        seg_words: list[Word] = []
        emitted: set[int] = set()
        touched = False
        for w in segment.words:
            span = member_keys.get(_word_key(w))
            if span is None:
                seg_words.append(w)
                continue
            touched = True
            if id(span) not in emitted:
                emitted.add(id(span))
                seg_words.append(_placeholder_word(t, span))
        stripped = segment.text.strip()
        if offset is not None:
            seg_text = _redact_text(stripped, offset, spans)
            touched = touched or seg_text != stripped
        elif touched:
            seg_text = " ".join(w.text.strip() for w in seg_words)  # the offsets were lost; the words are safe
        else:
            seg_text = segment.text
        update: dict = {"text": seg_text, "words": seg_words}
        if touched:
            update["tokens"] = []  # the decoder's token ids spell the original words
        segments.append(segment.model_copy(update=update))

    # Entities: redacted ones become their placeholders; others are re-pointed.
    redacted_ids = {id(span.entity) for span in spans}
    shifts = [(span.entity.end_char, len(span.label) - (span.entity.end_char - span.entity.start_char)) for span in spans]

    def moved(offset: int) -> int:
        return offset + sum(delta for end, delta in shifts if end <= offset)

    entities: list[Entity] = []
    for span in spans:
        e = span.entity
        start = moved(e.start_char)
        word = new_index.get(span.members[0], e.first_word) if span.members else e.first_word
        entities.append(
            e.model_copy(
                update={
                    "text": span.label,
                    "start_char": start,
                    "end_char": start + len(span.label),
                    "first_word": word,
                    "last_word": word,
                }
            )
        )
    for e in t.entities:
        if id(e) in redacted_ids:
            continue
        if any(s.entity.start_char < e.end_char and e.start_char < s.entity.end_char for s in spans):
            continue  # overlaps a redacted entity: its text is gone
        if e.first_word not in new_index or e.last_word not in new_index:
            continue
        entities.append(
            e.model_copy(
                update={
                    "start_char": moved(e.start_char),
                    "end_char": moved(e.end_char),
                    "first_word": new_index[e.first_word],
                    "last_word": new_index[e.last_word],
                }
            )
        )
    entities.sort(key=lambda e: e.start_char)

    summary = t.summary
    if summary:
        # The summary is free text from the refine stage: replace what it repeats verbatim.
        for span in sorted(spans, key=lambda s: -len(s.entity.text)):
            summary = re.sub(re.escape(span.entity.text.strip()), span.label, summary, flags=re.IGNORECASE)

    return t.model_copy(update={"text": text, "words": new_words, "segments": segments, "entities": entities, "summary": summary})


def entities_of_channel(t: Transcript, channel: int, channel_text: str) -> list[Entity]:
    """`t`'s entities spoken on `channel`, their offsets moved into `channel_text` (the
    channel's segments joined as `shared.formats.elevenlabs.channel_transcript` joins them)."""
    out: list[Entity] = []
    offsets = _segment_offsets(t)
    cursor = 0
    starts: list[tuple[int, int, int]] = []  # (global start, global end, channel-text start)
    for segment, offset in zip(t.segments, offsets, strict=True):
        stripped = segment.text.strip()
        if (segment.channel or 0) != channel or not stripped:
            continue
        at = channel_text.find(stripped, cursor)
        if offset is not None and at >= 0:
            starts.append((offset, offset + len(stripped), at))
            cursor = at + len(stripped)
    for e in t.entities or []:
        if (e.channel or 0) != channel:
            continue
        for begin, end, at in starts:
            if begin <= e.start_char and e.end_char <= end:
                start = at + e.start_char - begin
                out.append(e.model_copy(update={"start_char": start, "end_char": start + e.end_char - e.start_char}))
                break
    return out
