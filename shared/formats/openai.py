"""OpenAI `/v1/audio/transcriptions` response bodies, as pure functions of `Transcript`.

`verbose_json` carries the decoder's own per-segment values. Values an engine did not
produce stay `null` rather than being invented; openai-python parses them leniently.
"""

from __future__ import annotations

from typing import Any, Literal

from shared.formats.text import speaker_runs, to_srt, to_vtt
from shared.transcript import Transcript

Task = Literal["transcribe", "translate"]
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
GRANULARITIES = ("word", "segment")

# Whisper's language names (openai/whisper tokenizer.py); whisper-1 reports these, not codes.
LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao",
    "uz": "uzbek", "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa",
    "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip


def language_name(code: str) -> str:
    """Whisper's name for an ISO code; an unknown code is returned as it is."""
    return LANGUAGE_NAMES.get(code.lower(), code)


def usage(t: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": t.duration}


def to_json(t: Transcript) -> dict[str, Any]:
    return {"text": t.text, "usage": usage(t)}


def to_text(t: Transcript) -> str:
    return t.text.strip() + "\n"


def to_verbose_json(t: Transcript, *, granularities: tuple[str, ...] = ("segment",), task: Task = "transcribe") -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(t.language),
        "duration": t.duration,
        "text": t.text,
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": s.id,
                "seek": s.seek if s.seek is not None else 0,
                "start": s.start,
                "end": s.end,
                # Whisper's segment text keeps its leading space; so does OpenAI's.
                "text": " " + s.text.strip(),
                "tokens": s.tokens,
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in t.segments
        ]
    if "word" in granularities:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in t.words]
    body["usage"] = usage(t)
    return body


def to_diarized_json(t: Transcript) -> dict[str, Any]:
    """Speaker-attributed segments; the caller checks that the transcript has speakers."""
    runs = [run for s in t.segments for run in speaker_runs(s) if run[3]]
    return {
        "task": "transcribe",
        "duration": t.duration,
        "text": t.text,
        "segments": [
            {"type": "transcript.text.segment", "id": f"seg_{i}", "start": start, "end": end, "speaker": speaker, "text": text}
            for i, (start, end, speaker, text) in enumerate(runs)
        ],
        "usage": usage(t),
    }


def render(
    t: Transcript, response_format: str, *, granularities: tuple[str, ...] = ("segment",), task: Task = "transcribe"
) -> str | dict[str, Any]:
    """The body for `response_format`: a dict for the JSON formats, a string otherwise."""
    if response_format == "json":
        return to_json(t)
    if response_format == "text":
        return to_text(t)
    if response_format == "srt":
        return to_srt(t)
    if response_format == "vtt":
        return to_vtt(t)
    if response_format == "verbose_json":
        return to_verbose_json(t, granularities=granularities, task=task)
    if response_format == "diarized_json":
        return to_diarized_json(t)
    raise ValueError(f"unknown response_format {response_format!r}")
