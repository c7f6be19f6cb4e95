"""The native realtime protocol: session parameters, messages, error codes, close codes.

The gateway validates a client's parameters with `SessionParams` before it reserves a
worker, and sends the worker the same parameters; the worker speaks only this protocol
(other protocols are translated at the gateway's edges).

Client -> server: binary frames of audio in the negotiated encoding, and JSON text frames
`{"type": "config" | "flush" | "commit" | "end" | "keepalive", ...}`.
Server -> client: JSON text frames, one model below per `type`. The worker builds them,
the gateway reads them back with `parse_server_message` (the `ServerMessage` union).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    field_serializer,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict

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
SERVICE_UNAVAILABLE = "service_unavailable"  # fatal, 1013: PostgreSQL or Redis is down; retry shortly
LAG_EXCEEDED = "lag_exceeded"  # fatal, 1013: audio arrives faster than it is processed
IDLE_TIMEOUT = "idle_timeout"  # fatal, 1008
WORKER_LOST = "worker_lost"  # fatal: 1011 during the session; 1013 at connect (unreachable worker)
TRANSCRIBER_ERROR = "transcriber_error"  # fatal, 1011
INVALID_JSON = "invalid_json"  # the frame is dropped, the session goes on
INVALID_MESSAGE = "invalid_message"  # unknown type or bad fields; dropped
INVALID_AUDIO = "invalid_audio"  # not whole samples / wrong sample rate; dropped
CHUNK_TOO_LARGE = "chunk_too_large"  # dropped

Encoding = Literal["pcm_s16le", "mulaw"]
# Named model choices; settings.realtime_variants maps each to a model.
Variant = Literal["fast", "accurate"]
VARIANTS: tuple[Variant, ...] = ("fast", "accurate")


# -- client -> server -------------------------------------------------------------------


class SessionParams(BaseModel):
    """Query parameters of `WS /v1/audio/transcriptions/stream` (and of the worker socket)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    variant: Variant | None = None
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
    # Edges whose clients configure after connecting (OpenAI's session.update) set these;
    # the worker applies them from the next audio frame (language: from the next decode).
    language: str | None = Field(None, max_length=16)
    vad_threshold: float | None = Field(None, ge=0.1, le=0.9)
    min_silence_ms: int | None = Field(None, ge=50, le=2_000)
    endpoint_ms: int | None = Field(None, ge=200, le=3_000)


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


# -- server -> client -------------------------------------------------------------------


class _Message(BaseModel):
    """A server -> client message. Fields named in `_omitted_when_none` are left out of the
    JSON when they are None (they are absent on the wire, not null)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    _omitted_when_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self._omitted_when_none:
            if data.get(name, 0) is None:
                del data[name]
        return data


class SessionBegin(_Message):
    """The first message: the session's id (the REST id) and its effective parameters."""

    type: Literal["session.begin"] = "session.begin"
    session_id: str
    config: SessionParams

    @field_serializer("config")
    def _config(self, config: SessionParams) -> dict[str, Any]:
        return config.model_dump(exclude={"session_id"})


class SpeechStart(_Message):
    type: Literal["vad.speech_start"] = "vad.speech_start"
    timestamp: float  # seconds from the session start


class SpeechEnd(_Message):
    type: Literal["vad.speech_end"] = "vad.speech_end"
    timestamp: float


class TranscriptPartial(_Message):
    """A preview of the open utterance; replaced by later partials and by its final."""

    type: Literal["transcript.partial"] = "transcript.partial"
    utterance_id: int
    text: str
    start: float
    end: float


class StreamWord(BaseModel):
    """A word of a final, with times from the session start."""

    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float
    probability: float | None = None


FinalReason = Literal["vad", "max_length", "commit", "end"]


class TranscriptFinal(_Message):
    type: Literal["transcript.final"] = "transcript.final"
    _omitted_when_none = ("words",)

    utterance_id: int
    text: str
    start: float
    end: float
    language: str | None
    # vad: an endpoint; max_length: the utterance limit; commit: a flush; end: the session ended.
    reason: FinalReason
    latency_ms: float
    words: list[StreamWord] | None = None  # only when the session asked for word timestamps


class WarningMessage(_Message):
    type: Literal["warning"] = "warning"
    _omitted_when_none = ("lag_seconds",)

    code: str  # "lag": transcription is falling behind the audio
    message: str
    lag_seconds: float | None = None


class ErrorMessage(_Message):
    """An error; a fatal one is followed by the close. When the gateway reports a lost
    worker it adds the hybrid-mode enhancement outcome, as on `session.end`."""

    type: Literal["error"] = "error"
    _omitted_when_none = ("enhancement_job_id", "enhancement_error")

    code: str
    message: str
    fatal: bool = False
    enhancement_job_id: str | None = None
    enhancement_error: str | None = None


class SessionStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    audio_seconds: float = 0.0
    session_seconds: float = 0.0
    finals: int = 0
    partials: int = 0
    partials_shed: int = 0  # due but not decoded: the session was behind, or a final was waiting
    held_seconds: float = 0.0  # how long reading the client was paused for the decoder (backpressure)
    errors: int = 0
    max_lag_seconds: float = 0.0
    final_latency_ms_p50: float | None = None
    final_latency_ms_max: float | None = None


class RecordingSummary(TypedDict):
    """What the worker stored of the session (shared.realtime.recording.Recorder.close)."""

    bytes: int
    duration: float
    complete: bool
    error: str | None


class Enhancement(TypedDict, total=False):
    """The hybrid-mode enhancement outcome the gateway adds to `session.end` (and to a lost
    worker's error): the batch job's id, or why none was submitted."""

    enhancement_job_id: str
    enhancement_error: str


class SessionEnd(_Message):
    """The last message before a normal close. The gateway adds the enhancement fields."""

    type: Literal["session.end"] = "session.end"
    _omitted_when_none = ("recording", "enhancement_job_id", "enhancement_error")

    session_id: str
    stats: SessionStats
    recording: RecordingSummary | None = None  # only when the session was recorded
    enhancement_job_id: str | None = None
    enhancement_error: str | None = None


ServerMessage = Annotated[
    SessionBegin | SpeechStart | SpeechEnd | TranscriptPartial | TranscriptFinal | WarningMessage | ErrorMessage | SessionEnd,
    Field(discriminator="type"),
]
_SERVER_MESSAGE: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_server_message(data: str | bytes | Mapping[str, Any]) -> ServerMessage:
    """A server message from its JSON (or decoded JSON); raises pydantic.ValidationError."""
    if isinstance(data, str | bytes):
        return _SERVER_MESSAGE.validate_json(data)
    return _SERVER_MESSAGE.validate_python(data)


def error(code: str, text: str, *, fatal: bool = False) -> ErrorMessage:
    return ErrorMessage(code=code, message=text, fatal=fatal)


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
