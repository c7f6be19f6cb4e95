"""The native realtime protocol: session parameters, message shapes, error codes, close codes.

The gateway validates a client's parameters with `SessionParams` before it reserves a
worker, and sends the worker the same parameters; the worker speaks only this protocol
(the ElevenLabs protocol is translated at the gateway).

Client -> server: binary frames of audio in the negotiated encoding, and JSON text frames
`{"type": "config" | "flush" | "commit" | "end" | "keepalive", ...}`.
Server -> client: JSON text frames whose `type` is one of the `*` constants below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import model_registry
from shared.settings import Settings

# Server -> client message types.
SESSION_BEGIN = "session.begin"
SPEECH_START = "vad.speech_start"
SPEECH_END = "vad.speech_end"
PARTIAL = "transcript.partial"
FINAL = "transcript.final"
WARNING = "warning"
ERROR = "error"
SESSION_END = "session.end"

# Close codes (RFC 6455). 1008: the client's fault (bad parameters, auth, idle);
# 1011: ours (a worker died, the model failed); 1013: try again later (no capacity, overload).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013

# Error codes in `{"type": "error", "code": ...}`. Fatal ones are followed by a close.
INVALID_REQUEST = "invalid_request"  # fatal, 1008: bad query parameters
UNAUTHORIZED = "unauthorized"  # fatal, 1008
FORBIDDEN = "forbidden"  # fatal, 1008
MODEL_UNAVAILABLE = "model_unavailable"  # fatal, 1008: no worker serves it / weights missing
NO_CAPACITY = "no_capacity"  # fatal, 1013
LAG_EXCEEDED = "lag_exceeded"  # fatal, 1013: audio arrives faster than it is processed
IDLE_TIMEOUT = "idle_timeout"  # fatal, 1008
WORKER_LOST = "worker_lost"  # fatal, 1011
TRANSCRIBER_ERROR = "transcriber_error"  # fatal, 1011
INVALID_JSON = "invalid_json"  # the frame is dropped, the session goes on
INVALID_MESSAGE = "invalid_message"  # unknown type or bad fields; dropped
INVALID_AUDIO = "invalid_audio"  # not whole samples / wrong sample rate; dropped
CHUNK_TOO_LARGE = "chunk_too_large"  # dropped

Encoding = Literal["pcm_s16le", "mulaw"]


class SessionParams(BaseModel):
    """Query parameters of `WS /v1/audio/transcriptions/stream` (and of the worker socket)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    variant: Literal["fast", "accurate"] | None = None
    language: str | None = None
    encoding: Encoding = "pcm_s16le"
    sample_rate: int = Field(16_000, ge=8_000, le=48_000)
    # True: a VAD endpoint ends an utterance and emits its final; False: finals only on flush.
    vad: bool = True
    interim_results: bool = True
    word_timestamps: bool = False
    vad_threshold: float = Field(0.5, ge=0.1, le=0.9)
    min_speech_ms: int = Field(100, ge=50, le=2_000)
    # Silence that makes the VAD report speech_end (and start decoding the final early).
    min_silence_ms: int = Field(100, ge=50, le=2_000)
    # Silence that ends an utterance.
    endpoint_ms: int = Field(500, ge=200, le=3_000)
    # Audio after which an utterance is finalised even without an endpoint or flush.
    max_utterance_s: float = Field(90.0, ge=5.0, le=600.0)
    prompt: str | None = Field(None, max_length=1_000)
    session_id: str | None = Field(None, max_length=64)
    # Record the session's audio and finals into object storage (the gateway decides).
    record: bool = False

    @model_validator(mode="after")
    def _check(self) -> SessionParams:
        if self.encoding == "mulaw" and self.sample_rate != 8_000:
            raise ValueError("encoding 'mulaw' is only supported at sample_rate 8000")
        if self.min_silence_ms > self.endpoint_ms:
            self.min_silence_ms = self.endpoint_ms
        return self

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm_s16le" else 1

    def query(self) -> dict[str, str]:
        """As query parameters for the worker socket."""
        out: dict[str, str] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


class ConfigUpdate(BaseModel):
    """`{"type": "config", ...}`: settings a client may change mid-session."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["config"]
    interim_results: bool | None = None
    word_timestamps: bool | None = None
    vad: bool | None = None
    prompt: str | None = Field(None, max_length=1_000)


class UnknownRealtimeModel(LookupError):
    pass


def resolve_model(params: SessionParams, settings: Settings) -> str:
    """The model name a session asks for: `model` (registry aliases apply), else the
    `variant`'s configured model, else the default model."""
    if params.model:
        return model_registry.aliases(settings).get(params.model, params.model)
    if params.variant:
        name = settings.realtime_variants.get(params.variant)
        if not name:
            raise UnknownRealtimeModel(f"variant {params.variant!r} is not configured (DALSTON_REALTIME_VARIANTS)")
        return name
    return settings.default_model


def message(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, **fields}


def error(code: str, text: str, *, fatal: bool = False) -> dict[str, Any]:
    return {"type": ERROR, "code": code, "message": text, "fatal": fatal}


def first_error(exc: Exception) -> str:
    """A one-line message from a pydantic ValidationError (or any exception)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        items = errors()
        if items:
            first = items[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            return f"{loc}: {msg}" if loc else msg
    return str(exc)
