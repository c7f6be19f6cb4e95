"""Spoken forms of numbers and emails, rewritten the way they are written, with a map back
to the transcript's characters.

Speech says "four one one one, one one one one …" and "margaret dot jones at example dot
com"; a transcriber writes that as words, or as "4-1-1-1", "415, 267, 3842",
"jones.margaret at gmail.com". Pattern recognizers (cards, phones, emails, SSNs) only know
the written forms, so they run on a normalised view of the text:

- a run of digits said as words ("oh", "zero" … "nine", "double five", "twenty one",
  "eight hundred") and/or written as numerals, joined only by spaces, commas, hyphens,
  periods or "dash", becomes one digit string, when at least one piece of it was a word or
  the pieces are separated (so "415, 267, 3842" becomes "4152673842"; a lone "2024" stays);
- "<local> at <domain> dot <tld>" (with "dot", "underscore", "dash" inside either part, or
  written dots) becomes "local@domain.tld".

Everything else is copied unchanged. `Normalised.to_original` maps a span of the normalised
text back to the span of the original text it came from (whole source tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
TEENS = {
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
}
TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9"}
REPEAT = {"double": 2, "triple": 3}
# Said between digits without adding any: "four one one one dash …".
DIGIT_JOINERS = {"dash", "hyphen"}
# Allowed between two pieces of one spoken number (besides spaces).
DIGIT_SEPARATORS = {",", "-", ".", "–"}
EMAIL_CONNECTORS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
# Top-level domains a spoken email may end in ("… dot com"): a closed list, so "at home dot"
# in ordinary speech is not an email.
TLDS = {
    "com", "org", "net", "edu", "gov", "io", "co", "uk", "us", "de", "fr", "ca", "au", "info", "biz", "me", "ai",
    "app", "dev", "eu", "nl", "es", "it", "ie", "nz", "in", "mil", "tv", "email",
}  # fmt: skip

# Function words are never part of a spoken address: "look at the dot com bubble".
NOT_ADDRESS_WORDS = {"a", "an", "the", "is", "to", "me", "my", "your", "our", "this", "that", "in", "on", "of", "it"}
TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+|\S")
# A written domain ("example.com", "mail.org"), as a transcriber may write half an email.
WRITTEN_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.([A-Za-z]{2,})$")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def low(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class Piece:
    """Normalised text [norm_start, norm_end) came from original text [start, end)."""

    norm_start: int
    norm_end: int
    start: int
    end: int


@dataclass(frozen=True)
class Normalised:
    original: str
    text: str
    pieces: tuple[Piece, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering normalised [start, end): from the start of the piece
        holding `start` to the end of the piece holding `end - 1`."""
        if end <= start:
            raise ValueError(f"empty span {start}:{end}")
        first = next(p for p in self.pieces if p.norm_end > start)
        last = next(p for p in reversed(self.pieces) if p.norm_start < end)
        if first.end - first.start == first.norm_end - first.norm_start and first.norm_start <= start:
            # An unchanged piece maps character for character.
            begin = first.start + (start - first.norm_start)
        else:
            begin = first.start
        if last.end - last.start == last.norm_end - last.norm_start:
            finish = last.start + (min(end, last.norm_end) - last.norm_start)
        else:
            finish = last.end
        return begin, finish


def tokens(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def normalise(text: str) -> Normalised:
    toks = tokens(text)
    replacements: list[tuple[int, int, str]] = []  # token index range [i, j) → replacement
    i = 0
    while i < len(toks):
        found = _email_at(toks, i) or _number_at(toks, i)
        if found:
            j, value = found
            replacements.append((i, j, value))
            i = j
        else:
            i += 1
    return _build(text, toks, replacements)


def _build(text: str, toks: list[Token], replacements: list[tuple[int, int, str]]) -> Normalised:
    out: list[str] = []
    pieces: list[Piece] = []
    pos = 0  # in the original
    length = 0  # of the normalised text so far

    def copy(upto: int) -> None:
        nonlocal pos, length
        if upto > pos:
            out.append(text[pos:upto])
            pieces.append(Piece(length, length + upto - pos, pos, upto))
            length += upto - pos
            pos = upto

    for i, j, value in replacements:
        start, end = toks[i].start, toks[j - 1].end
        copy(start)
        out.append(value)
        pieces.append(Piece(length, length + len(value), start, end))
        length += len(value)
        pos = end
    copy(len(text))
    return Normalised(original=text, text="".join(out), pieces=tuple(pieces))


# --- numbers ---------------------------------------------------------------------------


def _digits_at(toks: list[Token], i: int) -> tuple[int, str, bool] | None:
    """Digits said or written starting at token i: (next index, digits, spoken?)."""
    low = toks[i].low
    if toks[i].text.isdigit():
        return i + 1, toks[i].text, False
    if low in REPEAT and i + 1 < len(toks) and toks[i + 1].low in DIGIT_WORDS:
        return i + 2, DIGIT_WORDS[toks[i + 1].low] * REPEAT[low], True
    if low in TENS:
        if i + 1 < len(toks) and toks[i + 1].low in DIGIT_WORDS and toks[i + 1].low not in ("zero", "oh", "o"):
            return i + 2, TENS[low] + DIGIT_WORDS[toks[i + 1].low], True
        return i + 1, TENS[low] + "0", True
    if low in TEENS:
        return i + 1, TEENS[low], True
    if low in DIGIT_WORDS and low != "o":  # a lone letter "o" is a digit only inside a run
        return i + 1, DIGIT_WORDS[low], True
    if low == "hundred":
        return i + 1, "00", True
    return None


def _number_at(toks: list[Token], i: int) -> tuple[int, str] | None:
    first = _digits_at(toks, i)
    if first is None or toks[i].low == "hundred":
        return None
    j, digits, spoken = first
    pieces = 1
    separated = False
    while j < len(toks):
        k = j
        # Separators between pieces: punctuation and spoken "dash"; they must touch the
        # pieces around them in the text only through whitespace.
        while k < len(toks) and (toks[k].text in DIGIT_SEPARATORS or toks[k].low in DIGIT_JOINERS):
            k += 1
        if k < len(toks) and toks[k].low == "o" and k + 1 < len(toks) and _digits_at(toks, k + 1):
            nxt: tuple[int, str, bool] | None = (k + 1, "0", True)
        else:
            nxt = _digits_at(toks, k) if k < len(toks) else None
        if nxt is None:
            break
        if k > j:
            separated = True
        j, more, was_spoken = nxt
        digits += more
        spoken = spoken or was_spoken
        pieces += 1
    if pieces == 1 and not spoken:
        return None  # a written number on its own is already in its written form
    if not spoken and not separated:
        return None  # "2024 10" style: numerals next to each other, not read out
    if len(digits) < 3:
        return None  # "one", "twenty one": counts, not identifiers
    return j, digits


# --- emails ----------------------------------------------------------------------------


def _email_at(toks: list[Token], i: int) -> tuple[int, str] | None:
    """An email whose local part starts at token i: local (connector part)* at domain."""
    local, j = _dotted(toks, i)
    if local is None or j >= len(toks) or toks[j].low not in ("at", "@"):
        return None
    domain, k = _dotted(toks, j + 1)
    if domain is None or "." not in domain:
        return None
    tld = domain.rsplit(".", 1)[1].lower()
    if tld not in TLDS:
        return None
    return k, f"{local.lower()}@{domain.lower()}"


def _dotted(toks: list[Token], i: int) -> tuple[str | None, int]:
    """Word parts joined by spoken or written connectors: "jones dot margaret",
    "mail.org", "mary underscore jones". Returns (joined, next index)."""
    parts: list[str] = []
    j = i
    while j < len(toks):
        t = toks[j]
        if not _email_part(t.text):
            break
        parts.append(t.text)
        j += 1
        # A written dot glued to the next part ("example.com" tokenises as example . com).
        if j + 1 < len(toks) and toks[j].text in (".", "_", "-") and toks[j].start == toks[j - 1].end:
            if toks[j + 1].start == toks[j].end and _email_part(toks[j + 1].text):
                parts.append(toks[j].text)
                j += 1
                continue
        if j + 1 < len(toks) and toks[j].low in EMAIL_CONNECTORS and _email_part(toks[j + 1].text):
            parts.append(EMAIL_CONNECTORS[toks[j].low])
            j += 1
            continue
        break
    if not parts or any(p.lower() in NOT_ADDRESS_WORDS for p in parts):
        return None, i
    return "".join(parts), j


def _email_part(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9]+", text)) and text.lower() not in ("at", "dot")
