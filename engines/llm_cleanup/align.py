"""Map an LLM's cleaned text back onto the timed words (pure).

The LLM sees and returns text; the transcript's value is in its timed words. A token-level
alignment (difflib over normalised words: lower case, no punctuation) between the original
words and the cleaned tokens decides what each cleaned token is:

- the same word (casing or punctuation changed): the original word, times kept, new spelling;
- a substitution (the LLM changed the word): the original word's times, the new text;
- a deletion (a filler, a false start): the word is gone;
- an insertion (a word nobody said): `Word.generated = True`, no real timestamp: start = end
  at the boundary of the word before it (or the segment start).

A cleanup that changes too much of a segment is refused (the segment keeps its original), so
a confused model cannot rewrite what was said.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from shared.fillers import FILLERS
from shared.transcript import Entity, Segment, Word

# Removed under no_verbatim without counting as a change (ElevenLabs' "no verbatim").
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(token: str) -> str:
    return _NON_WORD.sub("", token.lower())


def tokens(text: str) -> list[str]:
    """Whitespace tokens; a punctuation-only token ("—", "-") joins the one before it."""
    out: list[str] = []
    for raw in text.split():
        if not normalise(raw) and out:
            out[-1] += raw
        elif normalise(raw):
            out.append(raw)
    return out


@dataclass
class Realigned:
    words: list[Word]
    sources: list[int | None]  # per new word: the index of the original word it came from
    changes: int  # original words substituted or deleted (fillers under no_verbatim excepted) + insertions
    changed_fraction: float
    touched: set[int] = field(default_factory=set)  # original indices substituted or deleted


def realign(words: list[Word], cleaned: str, *, no_verbatim: bool, segment_start: float) -> Realigned:
    """The cleaned tokens as words carrying the original words' times (see the module doc)."""
    new = tokens(cleaned)
    a = [normalise(w.text) for w in words]
    b = [normalise(t) for t in new]
    out: list[Word] = []
    sources: list[int | None] = []
    touched: set[int] = set()
    changes = 0

    def generated(text: str) -> Word:
        # At the boundary after the last kept word (or the first original word's start).
        anchor = out[-1] if out else (words[0] if words else None)
        at = (anchor.end if out else anchor.start) if anchor is not None else segment_start
        return Word(
            text=text,
            start=at,
            end=at,
            speaker=anchor.speaker if anchor else None,
            channel=anchor.channel if anchor else None,
            generated=True,
        )

    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                out.append(words[i].model_copy(update={"text": new[j]}))
                sources.append(i)
            continue
        paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(paired):
            out.append(words[i1 + k].model_copy(update={"text": new[j1 + k]}))
            sources.append(i1 + k)
            touched.add(i1 + k)
            changes += 1
        for i in range(i1 + paired, i2):  # deleted
            touched.add(i)
            if not (no_verbatim and a[i] in FILLERS):
                changes += 1
        for j in range(j1 + paired, j2):  # inserted
            out.append(generated(new[j]))
            sources.append(None)
            changes += 1
    return Realigned(out, sources, changes, changes / max(len(words), 1), touched)


@dataclass
class SegmentResult:
    segment: Segment
    sources: list[int | None]  # per word of the new segment: index into the original segment's words
    accepted: bool
    reason: str | None = None


def clean_segment(
    segment: Segment,
    cleaned: str | None,
    *,
    no_verbatim: bool,
    max_change: float = 0.5,
    protected: frozenset[int] = frozenset(),
) -> SegmentResult:
    """The segment with `cleaned` mapped onto its words, or the original with the reason it was kept.

    `protected`: indices of words that must survive unchanged except for casing/punctuation
    (the detect stage's entities: their offsets and audio spans must stay right)."""
    keep = list(range(len(segment.words)))
    if cleaned is None:
        return SegmentResult(segment, list(keep), False, "no answer for this segment")
    if not segment.words:
        # No timed words to carry: accept the text alone under the same change cap.
        before, after = [normalise(t) for t in tokens(segment.text)], [normalise(t) for t in tokens(cleaned)]
        ratio = difflib.SequenceMatcher(a=before, b=after, autojunk=False).ratio() if before or after else 1.0
        if 1 - ratio > max_change:
            return SegmentResult(segment, [], False, f"the cleanup changed {1 - ratio:.0%} of the text")
        return SegmentResult(segment.model_copy(update={"text": " ".join(tokens(cleaned))}), [], True)
    result = realign(segment.words, cleaned, no_verbatim=no_verbatim, segment_start=segment.start)
    if not result.words:
        return SegmentResult(segment, list(keep), False, "the cleanup removed every word")
    if result.changed_fraction > max_change:
        return SegmentResult(segment, list(keep), False, f"the cleanup changed {result.changed_fraction:.0%} of the words")
    if result.touched & protected:
        return SegmentResult(segment, list(keep), False, "the cleanup changed a detected entity's words")
    text = " ".join(w.text for w in result.words)
    return SegmentResult(segment.model_copy(update={"text": text, "words": result.words}), result.sources, True)


def repoint_entities(
    entities: list[Entity],
    old_segments: list[Segment],
    results: list[SegmentResult],
    old_words: list[Word],
) -> list[Entity]:
    """The entities with word indices and character offsets into the refined transcript.

    Indices follow the order merge gives the words (by start, end); offsets the text merge
    builds (segment texts, stripped, joined by one space). An entity's words are protected,
    so each of its words is still there."""
    old_index = {id(w): i for i, w in enumerate(old_words)}
    # Where each original (global) word went: (segment number, position in the new segment).
    placed: dict[int, tuple[int, int]] = {}
    for s, (seg, res) in enumerate(zip(old_segments, results, strict=True)):
        for pos, src in enumerate(res.sources):
            if src is not None and id(seg.words[src]) in old_index:
                placed[old_index[id(seg.words[src])]] = (s, pos)
    new_segments = [r.segment for r in results]
    ordered = sorted(
        ((w.start, w.end, s, pos) for s, seg in enumerate(new_segments) for pos, w in enumerate(seg.words)),
        key=lambda t: (t[0], t[1]),
    )
    new_index = {(s, pos): i for i, (_, _, s, pos) in enumerate(ordered)}
    old_offsets, new_offsets = _segment_offsets(old_segments), _segment_offsets(new_segments)
    text = " ".join(seg.text.strip() for seg in new_segments if seg.text.strip())

    def char_span(s: int, pos: int, old_char: int, *, end: bool) -> int:
        if not results[s].accepted:  # unchanged segment: the same characters, shifted
            return old_char - old_offsets[s] + new_offsets[s]
        words = new_segments[s].words
        start = new_offsets[s] + sum(len(w.text) + 1 for w in words[:pos])
        return start + len(words[pos].text) if end else start

    out: list[Entity] = []
    for e in entities:
        first, last = placed.get(e.first_word), placed.get(e.last_word)
        if first is None or last is None:
            continue  # cannot happen for protected words; never point at the wrong text
        start_char = char_span(*first, e.start_char, end=False)
        end_char = char_span(*last, e.end_char, end=True)
        out.append(
            e.model_copy(
                update={
                    "first_word": new_index[first],
                    "last_word": new_index[last],
                    "start_char": start_char,
                    "end_char": end_char,
                    "text": text[start_char:end_char],
                }
            )
        )
    return out


def _segment_offsets(segments: list[Segment]) -> list[int]:
    """Where each segment's stripped text starts in the joined transcript text."""
    offsets, at = [], 0
    for seg in segments:
        offsets.append(at)
        if seg.text.strip():
            at += len(seg.text.strip()) + 1
    return offsets
