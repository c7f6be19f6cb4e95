"""The spoken-form normaliser and its map back to the transcript's characters, and the
word snapping of detect hits (no model needed)."""

from __future__ import annotations

import re

import pytest

from shared.pii.detect import Hit, merge_hits, to_entities, word_spans
from shared.pii.spoken import normalise
from shared.transcript import Segment, Transcript, Word


def back(text: str, pattern: str) -> list[tuple[str, str]]:
    """(normalised match, the original text it maps back to) for each match of `pattern`."""
    n = normalise(text)
    return [(m.group(), text[slice(*n.to_original(m.start(), m.end()))]) for m in re.finditer(pattern, n.text)]


@pytest.mark.parametrize(
    ("text", "digits", "source"),
    [
        ("card four one one one, one one one one. Thanks", "41111111", "four one one one, one one one one"),
        (
            "call two one two, five five five, zero one nine eight",
            "2125550198",
            "two one two, five five five, zero one nine eight",
        ),
        ("4539, 1-4880, 0-3-4-3 ok", "4539148800343", "4539, 1-4880, 0-3-4-3"),
        ("on 415, 267, 3842, and", "4152673842", "415, 267, 3842"),
        ("double five oh one", "5501", "double five oh one"),
        ("eight hundred, five five five", "800555", "eight hundred, five five five"),
        ("twenty one thirty four", "2134", "twenty one thirty four"),
        ("four one dash two two", "4122", "four one dash two two"),
    ],
)
def test_spoken_digits_become_one_number(text: str, digits: str, source: str) -> None:
    assert back(text, r"\d{3,}") == [(digits, source)]


@pytest.mark.parametrize("text", ["in 2024 we had one cat", "no one came", "Oh, hello", "twenty one people", "page 12 34"])
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert normalise(text).text == text


@pytest.mark.parametrize(
    ("text", "email", "source"),
    [
        (
            "send it to margaret dot jones at example dot com.",
            "margaret.jones@example.com",
            "margaret dot jones at example dot com",
        ),
        ("It is David Miller at Mail.org, ok", "miller@mail.org", "Miller at Mail.org"),
        ("jones.margaret at gmail dot com", "jones.margaret@gmail.com", "jones.margaret at gmail dot com"),
        ("mary underscore jones at mail dot co dot uk", "mary_jones@mail.co.uk", "mary underscore jones at mail dot co dot uk"),
    ],
)
def test_spoken_emails_are_written(text: str, email: str, source: str) -> None:
    assert back(text, r"\S+@[\w.]+\w") == [(email, source)]


@pytest.mark.parametrize("text", ["we met at home dot", "look at the dot com bubble", "I am at work"])
def test_at_in_ordinary_speech_is_not_an_email(text: str) -> None:
    assert "@" not in normalise(text).text


def test_unchanged_text_maps_character_for_character() -> None:
    text = "Hello Margaret, call two one two, five five five, zero one nine eight now"
    n = normalise(text)
    i = n.text.index("Margaret")
    assert n.to_original(i, i + len("Margaret")) == (text.index("Margaret"), text.index("Margaret") + len("Margaret"))
    i = n.text.index("now")
    assert text[slice(*n.to_original(i, i + 3))] == "now"
    # A span starting inside a rewritten piece covers the whole of it.
    i = n.text.index("212")
    assert text[slice(*n.to_original(i + 1, i + 4))] == "two one two, five five five, zero one nine eight"


def _transcript(*segments: tuple[str, str | None, float]) -> Transcript:
    segs = []
    for i, (text, speaker, start) in enumerate(segments):
        words = [Word(text=w, start=start + k, end=start + k + 0.5, speaker=speaker) for k, w in enumerate(text.split())]
        segs.append(Segment(id=i, start=start, end=start + len(words), text=text, words=words, speaker=speaker))
    return Transcript(
        text=" ".join(s.text for s in segs),
        language="en",
        language_probability=None,
        duration=100,
        segments=segs,
        words=sorted((w for s in segs for w in s.words), key=lambda w: (w.start, w.end)),
        model="tiny.en",
    )


def test_word_spans_follow_the_text_and_the_sorted_words() -> None:
    # Two overlapping segments (per-channel style): words interleave in time, not in text.
    t = _transcript(("hello there Margaret", "a", 0.0), ("my number is", "b", 0.5))
    spans = word_spans(t)
    for span in spans:
        assert t.text[span.start : span.end] == t.words[span.index].text


def test_hits_snap_to_whole_words_with_times_and_speaker() -> None:
    t = _transcript(("Hello.", "agent", 0.0), ("My card is four one one one, one one one one, thanks.", "caller", 2.0))
    start = t.text.index("one one one,")  # a hit starting mid-word run
    end = t.text.index("thanks") - 2
    [entity] = to_entities(t, [Hit("credit_card", start + 1, end, 1.0)])
    assert entity.text == "one one one, one one one one"  # snapped to whole words, without the trailing comma
    assert entity.category == "pci"
    assert entity.speaker == "caller"
    assert t.words[entity.first_word].text == "one"
    assert t.words[entity.last_word].text == "one,"
    assert entity.start == t.words[entity.first_word].start and entity.end == t.words[entity.last_word].end
    assert t.text[entity.start_char : entity.end_char] == entity.text


def test_overlapping_hits_keep_the_strongest() -> None:
    hits = [Hit("phone_number", 0, 10, 0.75), Hit("credit_card", 0, 19, 1.0), Hit("person_name", 25, 30, 0.85)]
    assert merge_hits(hits) == [Hit("credit_card", 0, 19, 1.0), Hit("person_name", 25, 30, 0.85)]
