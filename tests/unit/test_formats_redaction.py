"""Text redaction of the canonical transcript (shared.formats.redaction)."""

from __future__ import annotations

from shared.formats.elevenlabs import ResponseOptions, to_response
from shared.formats.redaction import entities_of_channel, placeholder, redact
from shared.transcript import Entity, Segment, Transcript, Word

SEGMENTS = [
    ("Hi, this is Margaret Smith.", 0.0),
    ("My card is 4111 1111 1111 1111 and Margaret Smith again.", 3.0),
    ("Call Bob.", 9.0),
]


def _transcript(channels: list[int] | None = None) -> Transcript:
    segments, words = [], []
    for i, (text, start) in enumerate(SEGMENTS):
        channel = channels[i] if channels else None
        seg_words = [
            Word(text=token, start=start + j * 0.5, end=start + j * 0.5 + 0.4, speaker="A", channel=channel)
            for j, token in enumerate(text.split())
        ]
        segments.append(
            Segment(id=i, start=start, end=seg_words[-1].end, text=" " + text, words=seg_words, channel=channel, tokens=[1, 2])
        )
        words += seg_words
    text = " ".join(s.text.strip() for s in segments)
    t = Transcript(
        text=text,
        language="en",
        language_probability=0.9,
        duration=10.0,
        segments=segments,
        words=words,
        model="m",
        summary="Margaret Smith called about a card.",
    )

    def entity(kind: str, category: str, needle: str, occurrence: int = 0) -> Entity:
        start = -1
        for _ in range(occurrence + 1):
            start = text.index(needle, start + 1)
        end = start + len(needle)
        # word indices: words whose characters fall in [start, end)
        cursor, first, last = 0, None, None
        for k, w in enumerate(words):
            at = text.index(w.text, cursor)
            cursor = at + len(w.text)
            if at < end and cursor > start:
                first = k if first is None else first
                last = k
        assert first is not None and last is not None
        return Entity(
            type=kind,
            category=category,
            text=needle,
            start_char=start,
            end_char=end,
            start=words[first].start,
            end=words[last].end,
            confidence=0.9,
            first_word=first,
            last_word=last,
            channel=words[first].channel,
        )

    t.entities = [
        entity("person_name", "pii", "Margaret Smith"),
        entity("credit_card", "pci", "4111 1111 1111 1111"),
        entity("person_name", "pii", "Margaret Smith", 1),
        entity("person_name", "pii", "Bob"),
    ]
    return t


def test_placeholders() -> None:
    assert placeholder("redacted", "person_name") == "{REDACTED}"
    assert placeholder("entity_type", "person_name") == "{PERSON_NAME}"
    assert placeholder("enumerated_entity_type", "credit_card", 2) == "{CREDIT_CARD_2}"


def test_enumerated_numbers_per_type_and_same_text_same_number() -> None:
    r = redact(_transcript(), "enumerated_entity_type")
    assert r.text == ("Hi, this is {PERSON_NAME_1}. My card is {CREDIT_CARD_1} and {PERSON_NAME_1} again. Call {PERSON_NAME_2}.")
    assert "Margaret" not in r.text and "4111" not in r.text and "Bob" not in r.text


def test_words_and_segments_are_redacted_consistently() -> None:
    t = _transcript()
    r = redact(t, "entity_type")
    texts = [w.text for w in r.words]
    assert "Margaret" not in texts and "4111" not in texts
    card = next(w for w in r.words if w.text == "{CREDIT_CARD}")
    original_card = t.entities[1]  # type: ignore[index]
    assert card.start == original_card.start and card.end == original_card.end
    assert len(r.words) == len(t.words) - 1 - 3 - 1  # two names of two words, a card of four words, Bob of one
    assert [s.text for s in r.segments] == [
        "Hi, this is {PERSON_NAME}.",
        "My card is {CREDIT_CARD} and {PERSON_NAME} again.",
        "Call {PERSON_NAME}.",
    ]
    assert all(s.tokens == [] for s in r.segments)
    assert r.segments[1].words[3].text == "{CREDIT_CARD}"
    # the redacted transcript's text is still the join of its segments
    assert r.text == " ".join(s.text for s in r.segments)


def test_entities_point_at_their_placeholders() -> None:
    r = redact(_transcript(), "redacted")
    assert r.entities is not None and len(r.entities) == 4
    for e in r.entities:
        assert r.text[e.start_char : e.end_char] == "{REDACTED}" == e.text
        assert r.words[e.first_word].text == "{REDACTED}"
    assert r.summary == "{REDACTED} called about a card."


def test_a_subset_of_types_keeps_the_others_with_moved_offsets() -> None:
    r = redact(_transcript(), "enumerated_entity_type", types={"credit_card"})
    assert "Margaret Smith" in r.text and "{CREDIT_CARD_1}" in r.text and "4111" not in r.text
    assert r.entities is not None
    for e in r.entities:
        assert r.text[e.start_char : e.end_char] == e.text
        assert e.text.split()[0] in r.words[e.first_word].text


def test_nothing_to_redact_returns_the_transcript() -> None:
    t = _transcript()
    t.entities = []
    assert redact(t) is t
    t.entities = None
    assert redact(t) is t


def test_entities_of_a_channel_point_into_its_text() -> None:
    t = _transcript(channels=[0, 1, 0])
    channel_text = " ".join(s.text.strip() for s in t.segments if s.channel == 0)
    found = entities_of_channel(t, 0, channel_text)
    assert [e.text for e in found] == ["Margaret Smith", "Bob"]
    for e in found:
        assert channel_text[e.start_char : e.end_char] == e.text
    other = " ".join(s.text.strip() for s in t.segments if s.channel == 1)
    assert [other[e.start_char : e.end_char] for e in entities_of_channel(t, 1, other)] == [
        "4111 1111 1111 1111",
        "Margaret Smith",
    ]


# --- the ElevenLabs response ------------------------------------------------------------------


def test_elevenlabs_response_carries_entities_with_offsets_into_its_text() -> None:
    body = to_response(_transcript(), ResponseOptions(), transcription_id="t")
    assert [e["entity_type"] for e in body["entities"]] == ["person_name", "credit_card", "person_name", "person_name"]
    for e in body["entities"]:
        assert set(e) == {"text", "entity_type", "start_char", "end_char"}
        assert body["text"][e["start_char"] : e["end_char"]] == e["text"]


def test_elevenlabs_response_without_detection_has_no_entities() -> None:
    t = _transcript()
    t.entities = None
    assert "entities" not in to_response(t, ResponseOptions(), transcription_id="t")


def test_elevenlabs_redaction_replaces_text_and_words_and_omits_entities() -> None:
    options = ResponseOptions(entity_redaction=["person_name", "credit_card"], entity_redaction_mode="enumerated_entity_type")
    body = to_response(_transcript(), options, transcription_id="t")
    assert "entities" not in body
    assert "{PERSON_NAME_1}" in body["text"] and "{CREDIT_CARD_1}" in body["text"] and "Margaret" not in body["text"]
    assert "{CREDIT_CARD_1}" in [w["text"] for w in body["words"]]
    assert not any("4111" in w["text"] or "Margaret" in w["text"] for w in body["words"])


def test_elevenlabs_multichannel_entities_point_into_each_channel_text() -> None:
    t = _transcript(channels=[0, 1, 0])
    t.channels = 2
    body = to_response(t, ResponseOptions(use_multi_channel=True), transcription_id="t")
    for chunk in body["transcripts"]:
        assert chunk["entities"]
        for e in chunk["entities"]:
            assert chunk["text"][e["start_char"] : e["end_char"]] == e["text"]
    combined = to_response(t, ResponseOptions(use_multi_channel=True, multichannel_output_style="combined"), transcription_id="t")
    assert "entities" not in combined
