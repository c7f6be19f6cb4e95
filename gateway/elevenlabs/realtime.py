"""ElevenLabs Scribe realtime: `WS /v1/speech-to-text/realtime` (and `/realtime-beta`, the
path Python SDKs before v2.22.1 use), translated to and from the native protocol here.

Every query parameter the current SDK sends is read (see README, "ElevenLabs:
`WS /v1/speech-to-text/realtime`"): `keyterms` and the first chunk's `previous_text` become
the decoder prompt, the VAD fields the native VAD parameters, `include_language_detection`
a `language_code` on committed transcripts, `no_verbatim` drops filler words. Parameters
asking for messages Dalston cannot produce (`entity_redaction`, `transcript_edit`) are
refused; unknown parameters and unknown message fields are ignored, as ElevenLabs does.

Extensions for hybrid mode: the client may send `{"message_type": "end"}` to end the
session and receive `{"message_type": "session_ended", "session_id": ...,
"enhancement_job_id": ...}` before the close (plain ElevenLabs clients just close).
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from starlette.datastructures import ImmutableMultiDict

from gateway import forms, ratelimit
from gateway.elevenlabs import realtime_entities
from gateway.elevenlabs.request import parse_entity_types
from gateway.realtime.edge import MAX_CONTROL_FRAME_CHARS, ClientMessage, Refused, Translated
from gateway.realtime.proxy import RealtimeAuth, serve
from shared import model_registry, safejson
from shared.catalogue import realtime_backend
from shared.fillers import FILLERS
from shared.formats import elevenlabs as el_format
from shared.pii.detect import missing_extra
from shared.realtime import protocol as p
from shared.settings import Settings
from shared.transcript import Word

router = APIRouter(tags=["realtime"])
log = structlog.get_logger()

# ElevenLabs realtime model ids; all of them mean the default realtime model.
ELEVENLABS_REALTIME_MODELS = ("scribe_v2_realtime", "scribe_v2_realtime_turbo", "scribe_v2_realtime_lite", "scribe_realtime_v2")
ELEVENLABS_FORMATS: dict[str, tuple[p.Encoding, int]] = {
    f"pcm_{rate}": ("pcm_s16le", rate) for rate in (8000, 16000, 22050, 24000, 44100, 48000)
} | {"ulaw_8000": ("mulaw", 8000)}
# Native error codes -> ElevenLabs `message_type`s.
ELEVENLABS_ERRORS = {
    p.INVALID_REQUEST: "invalid_request",
    p.UNAUTHORIZED: "auth_error",
    p.FORBIDDEN: "auth_error",
    p.MODEL_UNAVAILABLE: "invalid_request",
    p.NO_CAPACITY: "resource_exhausted",
    p.SERVICE_UNAVAILABLE: "error",
    p.LAG_EXCEEDED: "queue_overflow",
    p.IDLE_TIMEOUT: "insufficient_audio_activity",
    p.WORKER_LOST: "transcriber_error",
    p.TRANSCRIBER_ERROR: "transcriber_error",
    p.INVALID_JSON: "input_error",
    p.INVALID_MESSAGE: "input_error",
    p.INVALID_AUDIO: "input_error",
    p.CHUNK_TOO_LARGE: "chunk_size_exceeded",
    ratelimit.RATE_LIMITED: "rate_limited",
    ratelimit.TOO_MANY_SESSIONS: "rate_limited",
}
FLUSH = json.dumps({"type": "flush"})
END = json.dumps({"type": "end"})
# ElevenLabs' realtime limits on keyterms (the SDK documents them; batch allows more).
MAX_KEYTERMS = 50
MAX_KEYTERM_CHARS = 20
# The native `prompt` limit (SessionParams, ConfigUpdate).
MAX_PROMPT_CHARS = 1000
# Asked-for messages Dalston does not produce (`redacted_transcript`, `edited_transcript`):
# refused rather than silently never sent.
UNAVAILABLE = {
    "entity_redaction": "redacted transcripts (entity_redaction)",
    "transcript_edit": "edited transcripts (transcript_edit)",
}
# no_verbatim drops shared.fillers' words here; false starts need the LLM, so realtime keeps them.


class ElevenLabsEdge:
    """ElevenLabs Scribe realtime <-> native (wire facts, section 2)."""

    protocol = "elevenlabs"

    def __init__(self, query: Mapping[str, str], settings: Settings) -> None:
        self.settings = settings
        try:
            self._read(query, settings)
        except forms.FieldError as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
        self.first_chunk = True

    def _read(self, q: Mapping[str, str], settings: Settings) -> None:
        model_id = forms.get_str(q, "model_id")
        if not model_id:
            raise Refused(p.INVALID_REQUEST, "model_id is required (e.g. model_id=scribe_v2_realtime)")
        self.model_id = model_id
        model: str | None = None
        variant = next((v for v in p.VARIANTS if v == model_id and v in settings.realtime_variants), None)
        if model_id in ELEVENLABS_REALTIME_MODELS:
            model = settings.default_model
        elif variant is None:
            model = model_id
            supported = [*ELEVENLABS_REALTIME_MODELS, *settings.realtime_variants, *model_registry.available(settings)]
            known = model_id in model_registry.aliases(settings) or model_id in model_registry.available(settings)
            if not known and realtime_backend(model_id, settings).id != "parakeet":
                raise Refused(
                    p.INVALID_REQUEST, f"The model_id '{model_id}' is invalid. Supported models: {', '.join(supported)}"
                )
        # `encoding` and `sample_rate` are what older SDKs and LiveKit send instead.
        audio_format = (forms.get_str(q, "audio_format") or forms.get_str(q, "encoding") or "").lower()
        sample_rate = forms.get_str(q, "sample_rate")
        if not audio_format and sample_rate:
            audio_format = f"pcm_{sample_rate}"
        audio_format = audio_format or "pcm_16000"
        if audio_format not in ELEVENLABS_FORMATS:
            raise Refused(
                p.INVALID_REQUEST, f"audio_format {audio_format!r} is not supported; use one of {', '.join(ELEVENLABS_FORMATS)}"
            )
        self.audio_format = audio_format
        encoding, rate = ELEVENLABS_FORMATS[audio_format]
        strategy = (forms.get_str(q, "commit_strategy") or "manual").lower()
        if strategy not in ("manual", "vad"):
            raise Refused(p.INVALID_REQUEST, f"commit_strategy must be 'manual' or 'vad', not {strategy!r}")
        self.commit_strategy = strategy
        self.silence_s = forms.get_float(q, "vad_silence_threshold_secs", minimum=0.3, maximum=3, default=1.5)
        self.vad_threshold = forms.get_float(q, "vad_threshold", minimum=0.1, maximum=0.9, default=0.4)
        self.min_speech_ms = int(forms.get_float(q, "min_speech_duration_ms", minimum=50, maximum=2000, default=100))
        self.min_silence_ms = int(forms.get_float(q, "min_silence_duration_ms", minimum=50, maximum=2000, default=100))
        self.include_timestamps = forms.get_bool(q, "include_timestamps", False)
        self.include_language_detection = forms.get_bool(q, "include_language_detection", False)
        self.no_verbatim = forms.get_bool(q, "no_verbatim", False)
        self.enable_logging = forms.get_bool(q, "enable_logging", True)
        # Repeated (`entity_detection=pii&entity_detection=pci`), so every value, not the last.
        fields = {k: q.getlist(k) for k in q} if isinstance(q, ImmutableMultiDict) else q
        for name, what in UNAVAILABLE.items():
            if forms.get_list(fields, name):
                raise Refused(p.INVALID_REQUEST, f"{name}: {what} are not available on this server yet; omit it")
        self.keyterms = _keyterms(fields)
        self.entity_types = parse_entity_types(fields, "entity_detection")
        if self.entity_types is not None:
            missing = missing_extra()
            if missing is not None:
                raise Refused(p.INVALID_REQUEST, f"entity_detection is not available on this server: {missing}")
        language = forms.get_str(q, "language_code")
        whisper_language = None
        if language:
            whisper_language = el_format.whisper_language(language)
            if whisper_language is None:
                raise Refused(p.INVALID_REQUEST, f"language_code {language!r} is not a supported ISO-639-1/3 code")
        self.language_code = language
        self.rate = rate
        self.params = p.SessionParams(
            model=model,
            variant=variant,
            language=whisper_language,
            encoding=encoding,
            sample_rate=rate,
            vad=strategy == "vad",
            interim_results=True,
            word_timestamps=self.include_timestamps,
            vad_threshold=self.vad_threshold,
            min_speech_ms=self.min_speech_ms,
            min_silence_ms=self.min_silence_ms,
            endpoint_ms=int(self.silence_s * 1000),
            max_utterance_s=90.0,  # ElevenLabs auto-commits every 90 s
            prompt=self._prompt(None),
        )

    def _prompt(self, previous_text: str | None) -> str | None:
        """The decoder prompt: the keyterms as batch joins them for faster-whisper's hotwords
        ("a, b"), then the client's previous_text. faster-whisper puts hotwords in the same
        prompt slot, right before the previous text, so this is the same bias as batch. Whisper
        reads the prompt as the text just before the audio and keeps its end (223 tokens), so
        the end is kept here too."""
        parts = [", ".join(self.keyterms), (previous_text or "").strip()]
        prompt = " ".join(part for part in parts if part)
        return prompt[-MAX_PROMPT_CHARS:] or None

    @staticmethod
    def error(code: str, message: str) -> ClientMessage:
        # `message` as well as `error`: older LiveKit plugins read `message`.
        return {"message_type": ELEVENLABS_ERRORS.get(code, "error"), "error": message, "message": message}

    def _input_error(self, message: str, kind: str = p.INVALID_MESSAGE) -> Translated:
        return Translated([], [self.error(kind, message)])

    def client_bytes(self, data: bytes) -> Translated:
        return self._input_error("binary frames are not part of this protocol; send input_audio_chunk JSON messages")

    def client_text(self, text: str) -> Translated:
        # A chunk's base64 audio is 4/3 of its bytes; anything beyond that plus room for the
        # other fields is refused before it is parsed.
        limit = self.settings.realtime_max_chunk_bytes * 4 // 3 + MAX_CONTROL_FRAME_CHARS
        if len(text) > limit:
            return self._input_error(
                f"message of {len(text)} characters exceeds the {limit}-character limit; dropped", p.CHUNK_TOO_LARGE
            )
        try:
            msg = safejson.loads(text)
        except json.JSONDecodeError as exc:
            return self._input_error(f"messages must be JSON: {exc.msg} at position {exc.pos}", p.INVALID_JSON)
        if not isinstance(msg, dict):
            return self._input_error("messages must be JSON objects")
        kind = msg.get("message_type") or ("input_audio_chunk" if "audio_base_64" in msg else None)
        if kind == "commit":
            return Translated([FLUSH], [])
        if kind == "end":
            return Translated([END], [])
        if kind != "input_audio_chunk":
            return self._input_error(f"unknown message_type {kind!r}; expected input_audio_chunk, commit or end")
        return self._audio_chunk(msg)

    def _audio_chunk(self, msg: dict[str, Any]) -> Translated:
        forward: list[str | bytes] = []
        audio_b64 = msg.get("audio_base_64", "")
        if not isinstance(audio_b64, str):
            return self._input_error("audio_base_64 must be a base64 string")
        sample_rate = msg.get("sample_rate")
        if sample_rate is not None and sample_rate != self.rate:
            return self._input_error(
                f"sample_rate {sample_rate} does not match the session's audio_format {self.audio_format}; chunk dropped",
                p.INVALID_AUDIO,
            )
        # base64 is 4/3 of the audio: refuse oversized chunks before decoding them.
        limit = self.settings.realtime_max_chunk_bytes
        if len(audio_b64) > limit * 4 // 3 + 4:
            return self._input_error(f"audio chunk exceeds the {limit}-byte limit; chunk dropped", p.CHUNK_TOO_LARGE)
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            return self._input_error("audio_base_64 is not valid base64; chunk dropped", p.INVALID_AUDIO)
        previous_text = msg.get("previous_text")  # the Python SDK sends null on every chunk
        if previous_text is not None:
            if not self.first_chunk:
                return self._input_error("previous_text is only allowed on the first audio chunk")
            if not isinstance(previous_text, str):
                return self._input_error("previous_text must be a string")
            if previous_text.strip():
                forward.append(json.dumps({"type": "config", "prompt": self._prompt(previous_text)}))
        if audio:
            self.first_chunk = False
            forward.append(audio)
        if msg.get("commit") is True:
            forward.append(FLUSH)
        return Translated(forward, [])

    def worker_message(self, msg: p.ServerMessage) -> list[ClientMessage]:
        if isinstance(msg, p.SessionBegin):
            return [{"message_type": "session_started", "session_id": msg.session_id, "config": self._config()}]
        if isinstance(msg, p.TranscriptPartial):
            return [{"message_type": "partial_transcript", "text": self._verbatim(msg.text)}]
        if isinstance(msg, p.TranscriptFinal):
            return self._committed(msg)
        if isinstance(msg, p.ErrorMessage):
            return [{**self.error(msg.code, msg.message), **_enhancement(msg.enhancement_job_id, msg.enhancement_error)}]
        if isinstance(msg, p.SessionEnd):
            hybrid_fields = _enhancement(msg.enhancement_job_id, msg.enhancement_error)
            return [{"message_type": "session_ended", "session_id": msg.session_id, **hybrid_fields}]
        return []  # VAD events and warnings have no ElevenLabs counterpart

    def _config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.rate,
            "audio_format": self.audio_format,
            "language_code": self.language_code,
            "model_id": self.model_id,
            "commit_strategy": self.commit_strategy,
            "vad_commit_strategy": self.commit_strategy,
            "vad_silence_threshold_secs": self.silence_s,
            "vad_threshold": self.vad_threshold,
            "min_speech_duration_ms": self.min_speech_ms,
            "min_silence_duration_ms": self.min_silence_ms,
            "include_timestamps": self.include_timestamps,
            "include_language_detection": self.include_language_detection,
            "keyterms": self.keyterms or None,
            "no_verbatim": self.no_verbatim,
            "enable_logging": self.enable_logging,
            "entity_detection": self.entity_types,
        }

    async def follow_up(self, msg: p.ServerMessage) -> list[ClientMessage]:
        """`committed_transcript_entities` after each committed transcript, when asked."""
        if self.entity_types is None or not isinstance(msg, p.TranscriptFinal):
            return []
        text = self._verbatim(msg.text)  # offsets into the committed transcript as sent
        try:
            entities = await realtime_entities.find(text, self.entity_types, self.settings)
        except Exception as exc:  # a broken pii install: the transcript still flows
            log.exception("realtime_entity_detection_failed")
            return [self.error(p.TRANSCRIBER_ERROR, f"entity detection failed: {exc}")]
        return [{"message_type": "committed_transcript_entities", "text": text, "entities": entities}]

    def _verbatim(self, text: str) -> str:
        return " ".join(token for _, token in without_fillers(text.split())) if self.no_verbatim else text

    def _committed(self, final: p.TranscriptFinal) -> list[ClientMessage]:
        text = self._verbatim(final.text)
        language = final.language or self.params.language or ""
        language_code = el_format.ISO639_3.get(language, language) or None
        committed: ClientMessage = {"message_type": "committed_transcript", "text": text}
        if self.include_language_detection:
            committed["language_code"] = language_code
        out = [committed]
        if self.include_timestamps:
            words = [Word(text=w.word, start=w.start, end=w.end, probability=w.probability) for w in final.words or []]
            if self.no_verbatim:
                words = [words[i].model_copy(update={"text": t}) for i, t in without_fillers([w.text for w in words])]
            out.append(
                {
                    "message_type": "committed_transcript_with_timestamps",
                    "text": text,
                    "language_code": language_code,
                    "words": el_format.words(words, "word"),
                }
            )
        return out


def _keyterms(fields: forms.FieldSource) -> list[str]:
    """Repeated (`keyterms=a&keyterms=b`, what the SDKs send) or a JSON list."""
    terms = [str(t).strip() for t in forms.get_list(fields, "keyterms") if str(t).strip()]
    if len(terms) > MAX_KEYTERMS:
        raise forms.FieldError("keyterms", f"at most {MAX_KEYTERMS} terms, got {len(terms)}")
    for term in terms:
        if len(term) > MAX_KEYTERM_CHARS:
            raise forms.FieldError("keyterms", f"each term must be at most {MAX_KEYTERM_CHARS} characters: {term!r}")
    return terms


def without_fillers(tokens: list[str]) -> list[tuple[int, str]]:
    """The tokens (words with their punctuation) that are not fillers, as (index, text): "Um,
    so I was, uh, there uh." -> "So I was there." A filler's sentence-ending mark moves to the
    word before it, a comma pair around it closes up, and a capital it started a sentence with
    passes to the next word."""
    out: list[tuple[int, str]] = []
    capitalise = False
    for i, token in enumerate(tokens):
        core = token.strip(string.punctuation).lower()
        if core not in FILLERS:
            out.append((i, token[:1].upper() + token[1:] if capitalise else token))
            capitalise = False
            continue
        trailing = token[len(token.rstrip(string.punctuation)) :]
        sentence_start = not out or out[-1][1].endswith((".", "?", "!"))
        if sentence_start:
            capitalise = capitalise or token[:1].isupper()
        elif trailing[:1] in (".", "?", "!"):
            j, before = out[-1]
            out[-1] = (j, before.rstrip(",;:") + trailing[:1])
        elif trailing.startswith(",") and out[-1][1].endswith(","):
            j, before = out[-1]
            out[-1] = (j, before[:-1])
    return out


def _enhancement(job_id: str | None, error: str | None) -> dict[str, str]:
    """The hybrid-mode fields, as far as they are set."""
    return {k: v for k, v in (("enhancement_job_id", job_id), ("enhancement_error", error)) if v is not None}


@router.websocket("/v1/speech-to-text/realtime")
async def elevenlabs_realtime(ws: WebSocket, auth: RealtimeAuth) -> None:
    await serve(ws, auth, ElevenLabsEdge)


@router.websocket("/v1/speech-to-text/realtime-beta")
async def elevenlabs_realtime_beta(ws: WebSocket, auth: RealtimeAuth) -> None:
    """The path Python SDKs before v2.22.1 use."""
    await serve(ws, auth, ElevenLabsEdge)
