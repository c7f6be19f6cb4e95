"""Acceptance (issue 12): the unmodified `elevenlabs` SDK asks a real fleet for entity
detection and redaction on a call where a caller says a name, a phone number, a card
number and an email address the way people say them (tests/fixtures/pii_call_en.wav).

Detection must find at least three of the four with offsets that point at the right text;
redaction must put placeholders where they were and leave out `entities`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from difflib import SequenceMatcher

import pytest
from elevenlabs import ElevenLabs
from harness import API_KEY, RunningFleet, start_fleet
from support import FIXTURES

pytestmark = pytest.mark.e2e
pytest.importorskip("presidio_analyzer", reason="the pii-presidio engine needs the 'pii' extra")

CALL = FIXTURES / "pii_call_en.wav"
EXPECTED = json.loads((FIXTURES / "pii_call_en.entities.json").read_text())["entities"]
REDIS_DB = 11  # beside the default e2e fleets (8, 9) and the other module fleets
DIGITS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())} | {"oh": "0"}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[ElevenLabs]:
    fleet: RunningFleet
    for fleet in start_fleet("fs", tmp_path_factory.mktemp("fleet-entities"), {}, redis_db=REDIS_DB):
        yield ElevenLabs(base_url=fleet.base_url, api_key=API_KEY, timeout=600)


def digits(text: str) -> str:
    """The digits a text says, written or spoken ("four five 3" -> "453")."""
    out = []
    for token in re.findall(r"[a-z]+|\d", text.lower()):
        out.append(DIGITS.get(token, token if token.isdigit() else ""))
    return "".join(out)


def letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def matches(expected: dict, found: str) -> bool:
    """Whether the entity text the server found is (mostly) the expected entity."""
    if expected["type"] in ("phone_number", "credit_card"):
        # The transcriber may drop or mishear a digit of a long spoken number (it is then still
        # the number's text the offsets point at): most of the digits, in order, must be there.
        want, got = digits(expected["words"]), digits(found)
        return SequenceMatcher(None, want, got).ratio() >= 0.85
    # Names and emails: most of the spoken words (an email's "at"/"dot" aside) are in the text found.
    spoken = [w for w in re.findall(r"[a-z]+", expected["words"].lower()) if w not in ("at", "dot")]
    return sum(w in letters(found) for w in spoken) >= max(1, len(spoken) // 2)


def test_entity_detection_finds_the_spoken_entities(client: ElevenLabs) -> None:
    with CALL.open("rb") as f:
        response = client.speech_to_text.convert(model_id="scribe_v1", file=f, entity_detection="all")
    assert response.entities is not None, response
    for e in response.entities:
        assert response.text[e.start_char : e.end_char] == e.text, e
    found = [
        expected["type"]
        for expected in EXPECTED
        if any(e.entity_type == expected["type"] and matches(expected, e.text) for e in response.entities)
    ]
    assert len(found) >= 3, f"found {found} in {[(e.entity_type, e.text) for e in response.entities]}: {response.text!r}"


def test_entity_redaction_puts_placeholders_in_the_text(client: ElevenLabs) -> None:
    with CALL.open("rb") as f:
        response = client.speech_to_text.convert(
            model_id="scribe_v1", file=f, entity_detection="all", entity_redaction="all", entity_redaction_mode="entity_type"
        )
    assert response.entities is None
    placeholders = {f"{{{t['type'].upper()}}}" for t in EXPECTED}
    present = {p for p in placeholders if p in response.text}
    assert len(present) >= 3, response.text
    words = [w.text for w in response.words if w.type == "word"]
    assert len(present & set(words)) >= 3, words
    # The name the caller gives (and the agent repeats) is gone wherever it was detected.
    assert "margaret" not in response.text.lower() or "{PERSON_NAME}" not in present, response.text
