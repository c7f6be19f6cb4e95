"""OpenAI Realtime API, transcription sessions: `WS /v1/realtime?intent=transcription`,
translated to and from the native protocol here.

OpenAI clients configure the session after the socket opens (`session.update`), but the
worker is reserved and its session started when the socket opens. So the worker session
always runs at pcm_s16le 24 kHz (OpenAI's pcm16) and G.711 input (8 kHz μ-law / A-law) is
converted here; turn detection, language, prompt and logprobs become native `config`
messages, which the worker applies from then on.

Two shapes of the configuration are accepted: the GA `session.update` with
`session.type = "transcription"` (`session.audio.input.{format, transcription,
turn_detection, noise_reduction}`, `include`), answered with `session.updated`; and the beta
`transcription_session.update` (`input_audio_format`, `input_audio_transcription`,
`turn_detection`), answered with `transcription_session.updated`. A client that connects
with `OpenAI-Beta: realtime=v1` (the beta SDK) gets `transcription_session.created` and
`conversation.item.created`; others get `session.created` and `conversation.item.added` /
`.done`, as the GA SDK parses them.

One committed turn is one conversation item. Its events, in order:
`input_audio_buffer.speech_started` / `speech_stopped` (server VAD only),
`conversation.item.input_audio_transcription.delta` while it is spoken, then when it is
committed (a VAD endpoint or the client's commit) `input_audio_buffer.committed`, the item,
the last delta, `...completed` with the whole transcript (and `conversation.item.done`).

Deltas are append-only (OpenAI has no way to take text back), but native partials may
rewrite earlier words. So a delta carries only words two consecutive partials agree on,
beyond what was already sent; the final adds what is left when it extends what was sent.
When the final rewrote words already sent, no further delta goes out for that item:
`completed.transcript` is always the authoritative text. With `?interim_deltas=false` a
turn's only delta is its final text, so deltas always add up to the transcript.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import soxr
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import forms, ratelimit
from gateway.realtime.edge import MAX_CONTROL_FRAME_CHARS, ClientMessage, Refused, Translated
from gateway.realtime.proxy import RealtimeAuth, serve
from shared import model_registry, safejson
from shared.formats import elevenlabs as el_format
from shared.realtime import protocol as p
from shared.settings import Settings

router = APIRouter(tags=["realtime"])

RATE = 24_000  # OpenAI's pcm16 rate, and the worker session's
G711_RATE = 8_000
AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
# GA format types <-> the beta names used internally.
GA_FORMATS: dict[str, AudioFormat] = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
LOGPROBS = "item.input_audio_transcription.logprobs"
# The worker keeps this much audio before the first speech frame (realtime_worker PRE_PAD_S);
# it is the effective `prefix_padding_ms`, whatever the client asks.
PREFIX_PADDING_MS = 300
# Model names of OpenAI's realtime (conversation and live) models: in a transcription
# session they mean the default model. Transcription names (whisper-1, gpt-4o-transcribe,
# ...) are registry aliases, as in the batch API.
REALTIME_MODEL_PREFIXES = ("gpt-realtime", "gpt-4o-realtime", "gpt-4o-mini-realtime", "gpt-live-transcribe")
CLIENT_EVENTS = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)
# Native error codes -> OpenAI (error.type, error.code).
OPENAI_ERRORS: dict[str, tuple[str, str]] = {
    p.UNAUTHORIZED: ("invalid_request_error", "invalid_api_key"),
    p.MODEL_UNAVAILABLE: ("invalid_request_error", "model_not_found"),
    p.NO_CAPACITY: ("server_error", p.NO_CAPACITY),
    p.SERVICE_UNAVAILABLE: ("server_error", p.SERVICE_UNAVAILABLE),
    p.LAG_EXCEEDED: ("server_error", p.LAG_EXCEEDED),
    p.WORKER_LOST: ("server_error", p.WORKER_LOST),
    p.TRANSCRIBER_ERROR: ("server_error", p.TRANSCRIBER_ERROR),
    ratelimit.RATE_LIMITED: ("invalid_request_error", "rate_limit_exceeded"),
}
FLUSH = json.dumps({"type": "flush"})


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _event(kind: str, **fields: Any) -> ClientMessage:
    return {"type": kind, "event_id": _id("event"), **fields}


def _error(
    code: str, message: str, *, kind: str = "invalid_request_error", param: str | None = None, event_id: Any = None
) -> ClientMessage:
    """An OpenAI `error` event; `event_id` inside is the client event that caused it."""
    client_event = event_id if isinstance(event_id, str) else None
    return _event("error", error={"type": kind, "code": code, "message": message, "param": param, "event_id": client_event})


# -- G.711 --------------------------------------------------------------------------------


def _ulaw_table() -> np.ndarray:
    # G.711 μ-law expansion of every byte value to 16-bit linear.
    u = ~np.arange(256, dtype=np.uint8)
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F).astype(np.int32) << 3) + 0x84) << exponent) - 0x84
    return np.where((u & 0x80) != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    # G.711 A-law expansion of every byte value to 16-bit linear.
    a = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (a & 0x70) >> 4
    value = ((a & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    value = np.where(segment > 1, value << np.maximum(segment - 1, 0), value)
    return np.where((a & 0x80) != 0, value, -value).astype(np.int16)


ULAW = _ulaw_table()
ALAW = _alaw_table()


class InputAudio:
    """The client's audio in the session's format -> pcm_s16le at 24 kHz for the worker."""

    def __init__(self, audio_format: AudioFormat = "pcm16") -> None:
        self.format: AudioFormat = audio_format
        self._odd = b""  # a pcm16 byte left over from a chunk of odd length
        self._resampler: soxr.ResampleStream | None = None
        if audio_format != "pcm16":
            self._resampler = soxr.ResampleStream(G711_RATE, RATE, 1, dtype="int16")

    @property
    def rate(self) -> int:
        return RATE if self.format == "pcm16" else G711_RATE

    def duration_ms(self, data: bytes) -> float:
        """How much audio `data` holds (for the buffer's length)."""
        samples = (len(self._odd) + len(data)) // 2 if self.format == "pcm16" else len(data)
        return samples * 1000 / self.rate

    def convert(self, data: bytes) -> bytes:
        if self.format == "pcm16":
            data = self._odd + data
            whole = len(data) - len(data) % 2
            self._odd = data[whole:]
            return data[:whole]
        table = ULAW if self.format == "g711_ulaw" else ALAW
        assert self._resampler is not None
        resampled: np.ndarray = self._resampler.resample_chunk(table[np.frombuffer(data, dtype=np.uint8)])
        return resampled.astype("<i2").tobytes()

    def drain(self) -> bytes:
        """The audio the resampler still holds (its delay): sent before a commit, so the
        turn has all of its audio."""
        if self._resampler is None:
            return b""
        tail: np.ndarray = self._resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._resampler.clear()
        return tail.astype("<i2").tobytes()


# -- session configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Vad:
    """Server VAD, as the worker applies it."""

    threshold: float = 0.5
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class SessionConfig:
    """The effective configuration of a session (what `session.updated` reports)."""

    model: str
    format: AudioFormat = "pcm16"
    language: str | None = None
    prompt: str = ""
    vad: Vad | None = Vad()  # None: manual commit
    logprobs: bool = False


class _Open(BaseModel):
    # Fields this server has no use for (noise_reduction, keywords, idle_timeout_ms, ...)
    # are accepted and ignored, so newer SDKs keep working.
    model_config = ConfigDict(extra="ignore")


class Transcription(_Open):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class TurnDetection(_Open):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=0)
    silence_duration_ms: int | None = Field(None, ge=0)


class GAFormat(_Open):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: Literal[24000] | None = None


class GAInput(_Open):
    format: GAFormat | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None


class GAAudio(_Open):
    input: GAInput | None = None


class GASession(_Open):
    type: Literal["transcription"] | None = None
    audio: GAAudio | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None


class BetaSession(_Open):
    input_audio_format: AudioFormat | None = None
    input_audio_transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None


@dataclass
class Changes:
    """What one update asks for, in either shape; None: not asked."""

    format: AudioFormat | None = None
    transcription: Transcription | None = None
    turn_detection: tuple[TurnDetection | None] | None = None  # (None,): manual commit
    include: Sequence[str] | None = None


class UpdateRefused(Exception):
    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _validation_refusal(exc: ValidationError, prefix: str) -> UpdateRefused:
    first = exc.errors()[0]
    param = ".".join([prefix, *(str(part) for part in first.get("loc", ()))])
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return UpdateRefused("invalid_value", f"Invalid value for '{param}': {message}", param)


def _ga_changes(session: dict[str, Any]) -> Changes:
    if session.get("type") == "realtime":
        raise UpdateRefused(
            "invalid_value",
            "only transcription sessions are served here: send session.type 'transcription'",
            "session.type",
        )
    try:
        parsed = GASession.model_validate(session)
    except ValidationError as exc:
        raise _validation_refusal(exc, "session") from None
    changes = Changes(include=parsed.include)
    given = parsed.audio.input if parsed.audio is not None else None
    if given is None:
        return changes
    fields = given.model_fields_set
    if "format" in fields:
        if given.format is None:
            raise UpdateRefused("invalid_value", "audio.input.format cannot be null", "session.audio.input.format")
        changes.format = GA_FORMATS[given.format.type]
    if "transcription" in fields:
        if given.transcription is None:
            raise _no_transcription("session.audio.input.transcription")
        changes.transcription = given.transcription
    if "turn_detection" in fields:
        changes.turn_detection = (given.turn_detection,)
    return changes


def _beta_changes(session: dict[str, Any]) -> Changes:
    try:
        parsed = BetaSession.model_validate(session)
    except ValidationError as exc:
        raise _validation_refusal(exc, "session") from None
    fields = parsed.model_fields_set
    changes = Changes(format=parsed.input_audio_format, include=parsed.include)
    if "input_audio_transcription" in fields:
        if parsed.input_audio_transcription is None:
            raise _no_transcription("session.input_audio_transcription")
        changes.transcription = parsed.input_audio_transcription
    if "turn_detection" in fields:
        changes.turn_detection = (parsed.turn_detection,)
    return changes


def _no_transcription(param: str) -> UpdateRefused:
    return UpdateRefused("invalid_value", "transcription cannot be turned off in a transcription session", param)


def _is_beta_shape(session: dict[str, Any]) -> bool:
    """A `session.update` in the beta realtime shape (no `type`, flat fields)."""
    beta_fields = ("input_audio_format", "input_audio_transcription", "turn_detection")
    return "type" not in session and "audio" not in session and any(k in session for k in beta_fields)


# -- the edge -----------------------------------------------------------------------------


class OpenAIEdge:
    """OpenAI Realtime (transcription intent) <-> native (wire facts, section 4.4)."""

    protocol = "openai"
    enable_logging = True  # retention is opted out of with the native `retain_audio=false`
    beta = False  # the beta SDK's event names (`OpenAI-Beta: realtime=v1`)

    def __init__(self, query: Mapping[str, str], settings: Settings) -> None:
        self.settings = settings
        intent = (query.get("intent") or "transcription").strip().lower()
        if intent != "transcription":
            raise Refused(
                p.INVALID_REQUEST,
                f"only transcription sessions are served here: connect with intent=transcription, not {intent!r}",
            )
        try:
            # false: no deltas while a turn is spoken, only its final text as one delta, so
            # the deltas always add up to the completed transcript (as OpenAI's own do).
            self.interim_deltas = forms.get_bool(query, "interim_deltas", True)
        except forms.FieldError as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
        requested = (query.get("model") or "").strip() or None
        model, variant = self._model(requested, settings)
        self.params = p.SessionParams(
            model=model,
            variant=variant,
            encoding="pcm_s16le",
            sample_rate=RATE,
            vad=True,
            interim_results=True,
            vad_threshold=Vad().threshold,
            min_silence_ms=Vad().silence_duration_ms,
            endpoint_ms=Vad().silence_duration_ms,
        )
        try:
            self.session_model = p.resolve_model(self.params, settings)
        except p.UnknownRealtimeModel as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
        self.config = SessionConfig(model=requested or self.session_model)
        self.initial_config = self.config  # what session.created reports
        self.worker_vad = Vad()  # the VAD parameters the worker session has
        self.shape_beta = self.beta
        self.audio = InputAudio()
        self.session_id: str | None = None
        self.held: list[ClientMessage] = []  # replies due before session.created is sent
        # The item being spoken (not yet committed) and the one before it.
        self.item_id = _id("item")
        self.previous_item_id: str | None = None
        self.in_speech = False
        self.next_utterance = 0  # partials of earlier utterances are stale
        self.sent_text = ""  # the deltas sent for the current item, concatenated
        self.last_partial: list[str] = []
        self.buffered_ms = 0.0  # audio appended since the last commit, clear or VAD turn
        self.flushes: deque[Literal["commit", "clear"]] = deque()  # flushes sent, oldest first

    @staticmethod
    def _model(requested: str | None, settings: Settings) -> tuple[str | None, p.Variant | None]:
        if requested is None or requested.startswith(REALTIME_MODEL_PREFIXES):
            return None, None
        variant = next((v for v in p.VARIANTS if v == requested and v in settings.realtime_variants), None)
        return (None, variant) if variant is not None else (requested, None)

    @staticmethod
    def error(code: str, message: str) -> ClientMessage:
        kind, openai_code = OPENAI_ERRORS.get(code, ("invalid_request_error", code))
        return _error(openai_code, message, kind=kind)

    # -- client -> worker ---------------------------------------------------------------

    def client_bytes(self, data: bytes) -> Translated:
        message = "binary frames are not part of this protocol; send input_audio_buffer.append events with base64 audio"
        return self._reply(_error("invalid_value", message))

    def client_text(self, text: str) -> Translated:
        # An append's base64 audio is 4/3 of its bytes; anything beyond that plus room for
        # the other fields is refused before it is parsed.
        limit = self.settings.realtime_max_chunk_bytes * 4 // 3 + MAX_CONTROL_FRAME_CHARS
        if len(text) > limit:
            return self._reply(
                _error(p.CHUNK_TOO_LARGE, f"event of {len(text)} characters exceeds the {limit}-character limit; dropped")
            )
        try:
            event = safejson.loads(text)
        except json.JSONDecodeError as exc:
            return self._reply(_error("invalid_json", f"events must be JSON: {exc.msg} at position {exc.pos}"))
        if not isinstance(event, dict):
            return self._reply(_error("invalid_json", "events must be JSON objects"))
        kind, event_id = event.get("type"), event.get("event_id")
        if kind == "input_audio_buffer.append":
            return self._append(event, event_id)
        if kind == "input_audio_buffer.commit":
            return self._commit(event_id)
        if kind == "input_audio_buffer.clear":
            return self._clear()
        if kind in ("session.update", "transcription_session.update"):
            return self._update(kind, event, event_id)
        supported = ", ".join(repr(k) for k in CLIENT_EVENTS)
        message = (
            f"Invalid value: {kind!r}. Supported values in a transcription session are: {supported}."
            if isinstance(kind, str)
            else "Missing required parameter: 'type'."
        )
        code = "invalid_value" if isinstance(kind, str) else "missing_required_parameter"
        return self._reply(_error(code, message, param="type", event_id=event_id))

    def _reply(self, *messages: ClientMessage, to_worker: list[str | bytes] | None = None) -> Translated:
        if self.session_id is None:  # session.created goes first
            self.held.extend(messages)
            return Translated(to_worker or [], [])
        return Translated(to_worker or [], list(messages))

    def _append(self, event: dict[str, Any], event_id: Any) -> Translated:
        audio_b64 = event.get("audio")
        if audio_b64 is None:
            return self._reply(
                _error("missing_required_parameter", "Missing required parameter: 'audio'.", param="audio", event_id=event_id)
            )
        if not isinstance(audio_b64, str):
            return self._reply(_error("invalid_type", "'audio' must be a base64 string.", param="audio", event_id=event_id))
        limit = self.settings.realtime_max_chunk_bytes
        if len(audio_b64) > limit * 4 // 3 + 4:
            message = f"audio chunk exceeds the {limit}-byte limit; send smaller appends. Chunk dropped."
            return self._reply(_error(p.CHUNK_TOO_LARGE, message, param="audio", event_id=event_id))
        try:
            data = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            message = "Invalid 'audio': expected base64-encoded audio bytes. Chunk dropped."
            return self._reply(_error("invalid_value", message, param="audio", event_id=event_id))
        self.buffered_ms += self.audio.duration_ms(data)
        converted = self.audio.convert(data)
        # G.711 grows 6x on its way to 24 kHz pcm16: keep each native frame within the limit.
        step = limit - limit % 2
        return Translated([converted[i : i + step] for i in range(0, len(converted), step)], [])

    def _commit(self, event_id: Any) -> Translated:
        buffered_ms = self.buffered_ms
        if buffered_ms < 100:
            message = (
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {buffered_ms:.2f}ms of audio."
            )
            return self._reply(_error("input_audio_buffer_commit_empty", message, event_id=event_id))
        self.buffered_ms = 0.0
        self.flushes.append("commit")
        return Translated([*self._drained(), FLUSH], [])

    def _clear(self) -> Translated:
        """The worker cannot drop audio: the buffer is committed and its final dropped here."""
        self.buffered_ms = 0.0
        self.flushes.append("clear")
        return self._reply(_event("input_audio_buffer.cleared"), to_worker=[*self._drained(), FLUSH])

    def _drained(self) -> list[str | bytes]:
        tail = self.audio.drain()
        return [tail] if tail else []

    def _update(self, kind: str, event: dict[str, Any], event_id: Any) -> Translated:
        session = event.get("session")
        if not isinstance(session, dict):
            return self._reply(
                _error("missing_required_parameter", "Missing required parameter: 'session'.", param="session", event_id=event_id)
            )
        beta = kind == "transcription_session.update" or _is_beta_shape(session)
        try:
            changes = _beta_changes(session) if beta else _ga_changes(session)
            config = self._apply(changes, beta)
        except UpdateRefused as refused:
            return self._reply(_error(refused.code, refused.message, param=refused.param, event_id=event_id))
        self.shape_beta = beta
        to_worker: list[str | bytes] = []
        if config.format != self.config.format:
            to_worker.extend(self._drained())
            self.audio = InputAudio(config.format)
        native = _native_changes(self.config, config, self.worker_vad)
        self.worker_vad = config.vad or self.worker_vad
        if native:
            to_worker.append(json.dumps({"type": "config", **native}))
        self.config = config
        if config.vad is None:
            self.in_speech = False
        updated = "transcription_session.updated" if kind == "transcription_session.update" else "session.updated"
        return self._reply(_event(updated, session=self._session_object(beta, config)), to_worker=to_worker)

    def _apply(self, changes: Changes, beta: bool) -> SessionConfig:
        """The configuration after `changes`; refused as a whole when any part is wrong."""
        config = self.config
        prefix = "session.input_audio_transcription" if beta else "session.audio.input.transcription"
        if changes.format is not None:
            config = replace(config, format=changes.format)
        if changes.transcription is not None:
            given = changes.transcription
            fields = given.model_fields_set
            if "model" in fields and given.model:
                self._check_model(given.model, f"{prefix}.model")
                config = replace(config, model=given.model)
            if "language" in fields and given.language:
                config = replace(config, language=self._language(given.language, f"{prefix}.language"))
            if "prompt" in fields:
                config = replace(config, prompt=(given.prompt or "")[:1000])  # the native limit
        if changes.turn_detection is not None:
            (given_td,) = changes.turn_detection
            config = replace(
                config,
                vad=self._vad(given_td, config.vad, "session.turn_detection" if beta else "session.audio.input.turn_detection"),
            )
        if changes.include is not None:
            config = replace(config, logprobs=LOGPROBS in changes.include)
        return config

    def _check_model(self, name: str, param: str) -> None:
        if name.startswith(REALTIME_MODEL_PREFIXES):
            resolved = self.settings.default_model
        else:
            resolved = model_registry.aliases(self.settings).get(name, name)
        if resolved != self.session_model:
            raise UpdateRefused(
                "invalid_value",
                f"this session transcribes with {self.session_model!r} and {name!r} means {resolved!r}: the model is "
                f"chosen when the socket opens; connect with ?model={name} (client.realtime.connect(model=...))",
                param,
            )

    def _language(self, code: str, param: str) -> str:
        language = el_format.whisper_language(code)
        if language is None:
            raise UpdateRefused("invalid_value", f"language {code!r} is not a supported ISO-639-1 code", param)
        entry = model_registry.available(self.settings).get(self.session_model)
        if language != "en" and entry is not None and entry.english_only:
            message = f"model {self.session_model!r} transcribes English only; language {code!r} needs a multilingual model"
            raise UpdateRefused("invalid_value", message, param)
        return language

    @staticmethod
    def _vad(given: TurnDetection | None, current: Vad | None, param: str) -> Vad | None:
        if given is None:
            return None
        if given.type == "semantic_vad":
            raise UpdateRefused(
                "invalid_value",
                "semantic_vad is not supported: use server_vad (threshold, silence_duration_ms) or null for manual commit",
                f"{param}.type",
            )
        vad = current or Vad()
        if given.threshold is not None:
            vad = replace(vad, threshold=min(max(given.threshold, 0.1), 0.9))  # the native range
        if given.silence_duration_ms is not None:
            vad = replace(vad, silence_duration_ms=min(max(given.silence_duration_ms, 200), 3000))
        return vad

    # -- worker -> client ---------------------------------------------------------------

    def worker_message(self, msg: p.ServerMessage) -> list[ClientMessage]:
        if isinstance(msg, p.SessionBegin):
            self.session_id = msg.session_id
            created = "transcription_session.created" if self.beta else "session.created"
            held, self.held = self.held, []
            for reply in held:  # updates answered before the id was known
                if isinstance(reply.get("session"), dict):
                    reply["session"]["id"] = msg.session_id
            return [_event(created, session=self._session_object(self.beta, self.initial_config)), *held]
        if isinstance(msg, p.SpeechStart):
            if self.config.vad is None or self.in_speech:
                return []
            self.in_speech = True
            start_ms = max(0, round(msg.timestamp * 1000) - PREFIX_PADDING_MS)
            return [_event("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=self.item_id)]
        if isinstance(msg, p.SpeechEnd):
            return self._speech_stopped(msg.timestamp)
        if isinstance(msg, p.TranscriptPartial):
            if msg.utterance_id < self.next_utterance or not self.interim_deltas:
                return []
            words = msg.text.split()
            stable = _common_prefix(self.last_partial, words)
            self.last_partial = words
            return self._delta(" ".join(stable))
        if isinstance(msg, p.TranscriptFinal):
            return self._final(msg)
        if isinstance(msg, p.ErrorMessage):
            return [self.error(msg.code, msg.message)]
        return []  # warnings and session.end have no OpenAI counterpart

    async def follow_up(self, msg: p.ServerMessage) -> list[ClientMessage]:
        return []

    def _speech_stopped(self, timestamp: float) -> list[ClientMessage]:
        if not self.in_speech:
            return []
        self.in_speech = False
        return [_event("input_audio_buffer.speech_stopped", audio_end_ms=round(timestamp * 1000), item_id=self.item_id)]

    def _delta(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> list[ClientMessage]:
        """The delta that extends what was sent to `text`, if `text` extends it word-wise."""
        sent = self.sent_text
        if len(text) <= len(sent) or not text.startswith(sent) or (sent and text[len(sent)] != " "):
            return []
        self.sent_text = text
        event = _event(
            "conversation.item.input_audio_transcription.delta", item_id=self.item_id, content_index=0, delta=text[len(sent) :]
        )
        if logprobs is not None:
            event["logprobs"] = logprobs
        return [event]

    def _final(self, final: p.TranscriptFinal) -> list[ClientMessage]:
        self.next_utterance = final.utterance_id + 1
        if final.reason == "commit" and self.flushes:
            if self.flushes.popleft() == "clear":
                self._next_item()
                return []
        elif final.reason in ("vad", "max_length"):
            self.buffered_ms = 0.0
        out = self._speech_stopped(final.end)
        item_id, transcript = self.item_id, " ".join(final.text.split())
        out.append(_event("input_audio_buffer.committed", item_id=item_id, previous_item_id=self.previous_item_id))
        added = "conversation.item.created" if self.shape_beta else "conversation.item.added"
        out.append(_event(added, previous_item_id=self.previous_item_id, item=_item(item_id, "in_progress", None)))
        logprobs = _logprobs(final.words) if self.config.logprobs else None
        out.extend(self._delta(transcript))
        completed = _event(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
            usage={"type": "duration", "seconds": round(max(final.end - final.start, 0.0), 3)},
        )
        if logprobs is not None:
            completed["logprobs"] = logprobs
        out.append(completed)
        if not self.shape_beta:
            out.append(
                _event(
                    "conversation.item.done", previous_item_id=self.previous_item_id, item=_item(item_id, "completed", transcript)
                )
            )
        self.previous_item_id = item_id
        self._next_item()
        return out

    def _next_item(self) -> None:
        self.item_id = _id("item")
        self.in_speech = False
        self.sent_text = ""
        self.last_partial = []

    def _session_object(self, beta: bool, config: SessionConfig) -> dict[str, Any]:
        transcription = {"model": config.model, "language": config.language, "prompt": config.prompt}
        vad = config.vad
        turn_detection = (
            None
            if vad is None
            else {
                "type": "server_vad",
                "threshold": vad.threshold,
                "prefix_padding_ms": PREFIX_PADDING_MS,
                "silence_duration_ms": vad.silence_duration_ms,
            }
        )
        include = [LOGPROBS] if config.logprobs else None
        common = {"id": self.session_id, "object": "realtime.transcription_session"}
        if beta:
            return {
                **common,
                "input_audio_format": config.format,
                "input_audio_transcription": transcription,
                "turn_detection": turn_detection,
                "input_audio_noise_reduction": None,  # not applied here
                "include": include,
                "modalities": ["text"],
            }
        audio_format: dict[str, Any] = {"type": "audio/pcm", "rate": RATE}
        if config.format != "pcm16":
            audio_format = {"type": "audio/pcmu" if config.format == "g711_ulaw" else "audio/pcma"}
        return {
            **common,
            "type": "transcription",
            "audio": {
                "input": {
                    "format": audio_format,
                    "transcription": transcription,
                    "turn_detection": turn_detection,
                    "noise_reduction": None,  # not applied here
                }
            },
            "include": include,
        }


class OpenAIBetaEdge(OpenAIEdge):
    """The beta SDK (`client.beta.realtime`, header `OpenAI-Beta: realtime=v1`)."""

    beta = True


def _native_changes(old: SessionConfig, new: SessionConfig, worker_vad: Vad) -> dict[str, Any]:
    """The native `config` fields that turn `old` into `new` (shared.realtime.protocol.ConfigUpdate);
    `worker_vad` is the VAD the worker runs now (it keeps it while the session is manual)."""
    out: dict[str, Any] = {}
    if (old.vad is None) != (new.vad is None):
        out["vad"] = new.vad is not None
    if new.vad is not None and new.vad != worker_vad:
        # speech_stopped comes with the commit, as in OpenAI's server VAD (up to the
        # native 2 s limit of min_silence_ms).
        silence = new.vad.silence_duration_ms
        out |= {"vad_threshold": new.vad.threshold, "min_silence_ms": min(silence, 2000), "endpoint_ms": silence}
    # The worker cannot go back to detecting the language: a language, once set, stays
    # until another replaces it (session.updated reports the effective one).
    if new.language is not None and new.language != old.language:
        out["language"] = new.language
    if new.prompt != old.prompt:
        out["prompt"] = new.prompt
    if new.logprobs != old.logprobs:
        out["word_timestamps"] = new.logprobs  # the words carry the probabilities
    return out


def _common_prefix(a: list[str], b: list[str]) -> list[str]:
    out: list[str] = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return out


def _item(item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": status,
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def _logprobs(words: list[p.StreamWord] | None) -> list[dict[str, Any]]:
    """One entry per word (the worker's word probabilities): token, its UTF-8 bytes, log p."""
    out: list[dict[str, Any]] = []
    for i, word in enumerate(words or []):
        if word.probability is None:
            continue
        token = word.word if i == 0 else f" {word.word}"
        out.append(
            {"token": token, "bytes": list(token.encode("utf-8")), "logprob": round(math.log(max(word.probability, 1e-12)), 6)}
        )
    return out


@router.websocket("/v1/realtime")
async def openai_realtime(ws: WebSocket, auth: RealtimeAuth) -> None:
    beta = "realtime=v1" in ws.headers.get("openai-beta", "").replace(" ", "").lower()
    await serve(ws, auth, OpenAIBetaEdge if beta else OpenAIEdge)
