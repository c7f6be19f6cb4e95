"""ElevenLabs Speech-to-Text responses, a pure function of the canonical transcript.

`to_response` builds what `POST /v1/speech-to-text` returns (and what an ElevenLabs-style
webhook delivers): a Chunk, or the Multichannel shape for `use_multi_channel`. Field
rules follow the wire facts (1.4): `language_code` is never null, every word carries
`text`, `type` and `logprob`, and words alternate with `spacing` entries.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.audio_events import EVENT_TYPES
from shared.formats.documents import ExportOptions, render
from shared.formats.redaction import DEFAULT_STYLE, RedactionStyle, entities_of_channel, redact
from shared.transcript import AudioEvent, Transcript, Word

Granularity = Literal["none", "word", "character"]

# ISO 639-1 (what Whisper reports) -> ISO 639-3 (what ElevenLabs returns), for every
# language Whisper knows. Whisper spells Javanese "jw"; both spellings map.
ISO639_3: dict[str, str] = {
    "af": "afr", "am": "amh", "ar": "ara", "as": "asm", "az": "aze", "ba": "bak", "be": "bel", "bg": "bul",
    "bn": "ben", "bo": "bod", "br": "bre", "bs": "bos", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan",
    "de": "deu", "el": "ell", "en": "eng", "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin",
    "fo": "fao", "fr": "fra", "gl": "glg", "gu": "guj", "ha": "hau", "haw": "haw", "he": "heb", "hi": "hin",
    "hr": "hrv", "ht": "hat", "hu": "hun", "hy": "hye", "id": "ind", "is": "isl", "it": "ita", "ja": "jpn",
    "jv": "jav", "jw": "jav", "ka": "kat", "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "la": "lat",
    "lb": "ltz", "ln": "lin", "lo": "lao", "lt": "lit", "lv": "lav", "mg": "mlg", "mi": "mri", "mk": "mkd",
    "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa", "mt": "mlt", "my": "mya", "ne": "nep", "nl": "nld",
    "nn": "nno", "no": "nor", "oc": "oci", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por", "ro": "ron",
    "ru": "rus", "sa": "san", "sd": "snd", "si": "sin", "sk": "slk", "sl": "slv", "sn": "sna", "so": "som",
    "sq": "sqi", "sr": "srp", "su": "sun", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk",
    "th": "tha", "tk": "tuk", "tl": "tgl", "tr": "tur", "tt": "tat", "uk": "ukr", "ur": "urd", "uz": "uzb",
    "vi": "vie", "yi": "yid", "yo": "yor", "yue": "yue", "zh": "zho",
}  # fmt: skip
# ISO 639-3 -> the code Whisper expects; also the bibliographic 639-2 spellings clients send.
ISO639_1: dict[str, str] = {
    **{three: two for two, three in ISO639_3.items() if two != "jw"},
    "jav": "jw",
    **{"chi": "zh", "ger": "de", "fre": "fr", "dut": "nl", "gre": "el", "per": "fa", "cze": "cs", "rum": "ro"},
    **{"slo": "sk", "arm": "hy", "geo": "ka", "ice": "is", "mac": "mk", "may": "ms", "alb": "sq", "baq": "eu"},
    **{"bur": "my", "tib": "bo", "wel": "cy", "mao": "mi"},
}


def whisper_language(code: str) -> str | None:
    """The Whisper code for an ISO 639-1 or 639-3 code, or None when Whisper lacks the language."""
    code = code.strip().lower()
    if code in ISO639_3:
        return code
    return ISO639_1.get(code)


class ResponseOptions(BaseModel):
    """The request options that shape the response; stored with the job for later GETs and webhooks."""

    model_config = ConfigDict(extra="ignore")

    timestamps_granularity: Granularity = "word"
    additional_formats: list[ExportOptions] = Field(default_factory=list)
    use_multi_channel: bool = False
    multichannel_output_style: Literal["separate", "combined"] = "separate"
    # entity_redaction: the entity types whose text the response replaces (None: no redaction).
    entity_redaction: list[str] | None = None
    entity_redaction_mode: RedactionStyle = DEFAULT_STYLE
    # Audio events (when the events stage ran) as `audio_event` entries among the words.
    tag_audio_events: bool = True
    # detect_speaker_roles: speakers the refine stage gave a role are `agent` / `customer`.
    detect_speaker_roles: bool = False
    # use_speaker_library: speakers matched to an enrolled voice are called by its name.
    use_speaker_library: bool = False


def speaker_ids(t: Transcript, *, roles: bool = False, library: bool = False) -> dict[str, str]:
    """Our speaker labels -> ElevenLabs' `speaker_0`, `speaker_1`, ... in the transcript's order;
    with `roles`, `agent` / `customer` for the speakers that have one, and with `library`
    their label (the enrolled name, or the user's) for the speakers matched to an enrolled
    voice; the others keep theirs."""
    labels = list(t.speakers)
    for w in t.words:
        if w.speaker is not None and w.speaker not in labels:
            labels.append(w.speaker)
    for s in t.segments:
        if s.speaker is not None and s.speaker not in labels:
            labels.append(s.speaker)
    given = dict(t.speaker_roles) if roles else {}
    if library:
        # Labels as served (names applied: the label is the name) or as stored (the pipeline
        # id: its name is in speaker_names, as for a webhook built from the stored transcript).
        for label in t.known_speakers:
            given.setdefault(label, t.speaker_names.get(label, label))
    return {label: given.get(label) or f"speaker_{i}" for i, label in enumerate(labels)}


def with_speaker_ids(t: Transcript, *, roles: bool = False, library: bool = False) -> Transcript:
    """A copy of `t` with ElevenLabs speaker ids, so documents name speakers like the words do."""
    ids = speaker_ids(t, roles=roles, library=library)
    if not ids:
        return t

    def word(w: Word, fallback: str | None) -> Word:
        speaker = w.speaker or fallback
        return w.model_copy(update={"speaker": ids.get(speaker) if speaker else None})

    segments = [
        s.model_copy(
            update={"speaker": ids.get(s.speaker) if s.speaker else None, "words": [word(w, s.speaker) for w in s.words]}
        )
        for s in t.segments
    ]
    events = t.audio_events and [
        e.model_copy(update={"speaker": ids.get(e.speaker) if e.speaker else None}) for e in t.audio_events
    ]
    return t.model_copy(
        update={
            "segments": segments,
            "words": [word(w, None) for w in t.words],
            "speakers": [ids[label] for label in ids],
            "audio_events": events,
        }
    )


def language_code(t: Transcript) -> str:
    code = (t.language or "").strip().lower()
    return ISO639_3.get(code, code) or "und"


def logprob(probability: float | None) -> float:
    # Whisper gives each word a probability; its log is the logprob ElevenLabs reports.
    # Without one (an engine that has none) 0.0 is what the wire facts prescribe.
    if probability is None:
        return 0.0
    return math.log(min(max(probability, 1e-12), 1.0))


def _characters(text: str, start: float, end: float) -> list[dict[str, Any]]:
    # The model times words, not characters: a word's span is shared evenly by its characters.
    step = (end - start) / len(text) if text else 0.0
    return [{"text": c, "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3)} for i, c in enumerate(text)]


def words(
    items: list[Word], granularity: Granularity, *, channel_index: int | None = None, events: list[AudioEvent] | None = None
) -> list[dict[str, Any]]:
    """Word entries with a `spacing` entry between consecutive words; audio events, tagged
    like "(laughter)", take their place among the words by start time."""
    timed = granularity != "none"
    out: list[dict[str, Any]] = []
    previous: Word | None = None
    timeline: list[tuple[Word, str]] = [(w, "word") for w in items]
    if events:
        tagged = [
            (Word(text=EVENT_TYPES[e.type].tag, start=e.start, end=e.end, speaker=e.speaker), "audio_event") for e in events
        ]
        timeline = sorted(timeline + tagged, key=lambda item: (item[0].start, item[0].end))
    for w, kind in timeline:
        text = w.text.strip()
        if not text:
            continue
        if previous is not None:
            gap_start, gap_end = previous.end, max(previous.end, w.start)
            spacing: dict[str, Any] = {
                "text": " ",
                "start": gap_start if timed else None,
                "end": gap_end if timed else None,
                "type": "spacing",
                "speaker_id": previous.speaker,
                "logprob": 0.0,
            }
            if granularity == "character":
                spacing["characters"] = _characters(" ", gap_start, gap_end)
            if channel_index is not None:
                spacing["channel_index"] = channel_index
            out.append(spacing)
        entry: dict[str, Any] = {
            "text": text,
            "start": w.start if timed else None,
            "end": w.end if timed else None,
            "type": kind,
            "speaker_id": w.speaker,
            "logprob": logprob(w.probability),
        }
        if granularity == "character":
            entry["characters"] = _characters(text, w.start, w.end)
        if channel_index is not None:
            entry["channel_index"] = channel_index
        out.append(entry)
        previous = w
    return out


def channel_transcript(t: Transcript, channel: int) -> Transcript:
    """The part of `t` spoken on one channel (mono audio is channel 0); its entities point
    into the channel's own text."""
    segments = [s for s in t.segments if (s.channel or 0) == channel]
    items = [w for w in t.words if (w.channel or 0) == channel]
    speakers = {w.speaker for w in items} | {s.speaker for s in segments}
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return t.model_copy(
        update={
            "segments": segments,
            "words": items,
            "text": text,
            "speakers": [label for label in t.speakers if label in speakers],
            "entities": None if t.entities is None else entities_of_channel(t, channel, text),
        }
    )


def chunk(t: Transcript, options: ResponseOptions, *, channel_index: int | None = None) -> dict[str, Any]:
    """One Chunk of `t`. In multichannel modes words carry their `channel_index`."""
    granularity = options.timestamps_granularity
    # Events are heard on the mixed-down audio: they belong to the one-transcript shapes.
    events = t.audio_events if options.tag_audio_events and channel_index is None else None
    if not options.use_multi_channel:
        entries = words(t.words, granularity, events=events)
    elif channel_index is not None:
        entries = words(t.words, granularity, channel_index=channel_index)
    else:
        # combined style: one transcript, words of all channels ordered by time
        entries = []
        for c in range(max(t.channels, 1)):
            entries += words([w for w in t.words if (w.channel or 0) == c], granularity, channel_index=c)
        entries += words([], granularity, events=events)
        entries.sort(key=lambda e: (e["start"] is None, e["start"] or 0.0, e["type"] == "spacing"))
    result: dict[str, Any] = {
        "language_code": language_code(t),
        # None means the caller fixed the language: then it is certain, not estimated.
        "language_probability": t.language_probability if t.language_probability is not None else 1.0,
        "text": t.text.strip(),
        "words": entries,
    }
    if channel_index is not None:
        result["channel_index"] = channel_index
    # Entities when detection was asked; never with redaction (wire facts: omitted then), nor
    # in the combined multichannel style, which ElevenLabs documents as without entities.
    combined = options.use_multi_channel and channel_index is None
    if t.entities is not None and options.entity_redaction is None and not combined:
        lead = len(t.text) - len(t.text.lstrip())  # `text` is stripped: offsets move with it
        result["entities"] = [
            {"text": e.text, "entity_type": e.type, "start_char": e.start_char - lead, "end_char": e.end_char - lead}
            for e in t.entities
        ]
    if options.additional_formats:
        result["additional_formats"] = [render(t, f) for f in options.additional_formats]
    return result


def to_response(t: Transcript, options: ResponseOptions, *, transcription_id: str) -> dict[str, Any]:
    """The full ElevenLabs response: Chunk, or Multichannel for `use_multi_channel` (separate)."""
    t = with_speaker_ids(t, roles=options.detect_speaker_roles, library=options.use_speaker_library)
    if options.entity_redaction is not None:
        t = redact(t, options.entity_redaction_mode, options.entity_redaction)
    extra: dict[str, Any] = {"transcription_id": transcription_id, "audio_duration_secs": t.duration}
    if options.use_multi_channel and options.multichannel_output_style == "separate":
        transcripts = [chunk(channel_transcript(t, c), options, channel_index=c) for c in range(max(t.channels, 1))]
        return {"transcripts": transcripts, **extra}
    return {**chunk(t, options), **extra}
