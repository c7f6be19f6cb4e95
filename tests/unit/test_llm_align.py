"""The refine stage's mapping of an LLM's cleaned text back onto the timed words."""

from __future__ import annotations

import pytest

from engines.llm_cleanup.align import clean_segment, realign, repoint_entities
from engines.llm_cleanup.engine import _BadAnswer, _CleanupAnswer, _parse
from shared.transcript import Entity, Segment, Word


def _words(text: str, start: float = 0.0) -> list[Word]:
    return [Word(text=t, start=start + i, end=start + i + 0.5, speaker="speaker_0") for i, t in enumerate(text.split())]


def _segment(text: str, start: float = 0.0, sid: int = 0) -> Segment:
    words = _words(text, start)
    return Segment(id=sid, start=start, end=words[-1].end, text=text, words=words, speaker="speaker_0")


def test_casing_and_punctuation_keep_every_time() -> None:
    words = _words("hi i'm margaret how are you")
    out = realign(words, "Hi, I'm Margaret. How are you?", no_verbatim=False, segment_start=0)
    assert [w.text for w in out.words] == ["Hi,", "I'm", "Margaret.", "How", "are", "you?"]
    assert [(w.start, w.end) for w in out.words] == [(w.start, w.end) for w in words]
    assert out.changes == 0 and not any(w.generated for w in out.words)


def test_fillers_are_removed_without_counting_as_changes_under_no_verbatim() -> None:
    words = _words("um so we uh need the loan")
    out = realign(words, "So we need the loan.", no_verbatim=True, segment_start=0)
    assert [w.text for w in out.words] == ["So", "we", "need", "the", "loan."]
    assert [w.start for w in out.words] == [1, 2, 4, 5, 6]
    assert out.changes == 0 and out.sources == [1, 2, 4, 5, 6]
    # Verbatim mode: the same deletions count.
    assert realign(words, "So we need the loan.", no_verbatim=False, segment_start=0).changes == 2


def test_inserted_words_are_flagged_with_zero_length_at_the_boundary() -> None:
    words = _words("we need loan")
    out = realign(words, "We need a loan.", no_verbatim=False, segment_start=0)
    inserted = [w for w in out.words if w.generated]
    assert [w.text for w in inserted] == ["a"]
    assert inserted[0].start == inserted[0].end == words[1].end
    assert [w.generated for w in out.words] == [False, False, True, False]
    assert out.sources == [0, 1, None, 2]


def test_a_rewrite_or_a_missing_answer_keeps_the_original() -> None:
    segment = _segment("the quarterly numbers look fine to me")
    rewritten = clean_segment(segment, "Revenue grew strongly this year, as expected.", no_verbatim=False)
    assert not rewritten.accepted and rewritten.segment == segment and "changed" in (rewritten.reason or "")
    assert not clean_segment(segment, None, no_verbatim=False).accepted
    assert not clean_segment(segment, "   ", no_verbatim=False).accepted
    ok = clean_segment(segment, "The quarterly numbers look fine to me.", no_verbatim=False)
    assert ok.accepted and ok.segment.text == "The quarterly numbers look fine to me."


def test_garbage_json_is_refused() -> None:
    for content in ["not json", '{"segments": "x"}', '{"segments": [{"id": "a"}]}', "[]"]:
        with pytest.raises(_BadAnswer):
            _parse(content, _CleanupAnswer)
    fenced = _parse('```json\n{"segments": [{"id": 0, "text": "Hi."}]}\n```', _CleanupAnswer)
    assert fenced.segments[0].text == "Hi."


def test_entity_words_are_protected_and_entities_repointed() -> None:
    first = _segment("um my name is margaret", 0.0, 0)
    second = _segment("call me at noon", 10.0, 1)
    segments = [first, second]
    words = [w for s in segments for w in s.words]
    text = " ".join(s.text for s in segments)
    entity = Entity(
        type="person",
        category="pii",
        text="margaret",
        start_char=text.index("margaret"),
        end_char=text.index("margaret") + 8,
        start=4.0,
        end=4.5,
        confidence=0.9,
        first_word=4,
        last_word=4,
    )
    results = [
        clean_segment(first, "My name is Margaret.", no_verbatim=True, protected=frozenset({4})),
        clean_segment(second, "Call me at noon.", no_verbatim=True),
    ]
    assert all(r.accepted for r in results)
    [moved] = repoint_entities([entity], segments, results, words)
    new_text = " ".join(r.segment.text for r in results)
    assert moved.first_word == moved.last_word == 3
    assert new_text[moved.start_char : moved.end_char] == moved.text == "Margaret."
    # An answer that replaces the entity's word keeps the segment as it was.
    refused = clean_segment(first, "My name is Marjorie.", no_verbatim=True, protected=frozenset({4}))
    assert not refused.accepted and refused.segment == first
    # Unchanged segment before a changed one: offsets shift with the new text.
    results = [refused, clean_segment(second, "Call me at noon.", no_verbatim=True)]
    [kept] = repoint_entities([entity], segments, results, words)
    assert kept.start_char == entity.start_char and kept.first_word == 4
