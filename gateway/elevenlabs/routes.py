"""ElevenLabs-compatible batch API: `/v1/speech-to-text`, its transcripts, single-use tokens.

Requests become ordinary Dalston jobs (`gateway.submission`); the response is rendered
from the canonical transcript by `shared.formats.elevenlabs.to_response`. The options
that shape it are stored in the job's `parameters.elevenlabs`, so `GET .../transcripts/{id}`
and webhook deliveries render the same response later.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from gateway import audit, enrichment, known_speakers
from gateway.auth import TOKEN_TTL_SECONDS, TOKEN_TYPES, Principal, issue_token, require_scope
from gateway.elevenlabs.errors import ElevenLabsRoute, invalid
from gateway.elevenlabs.media import fetch_url, wrap_pcm
from gateway.elevenlabs.request import ConvertRequest, parse_convert
from gateway.errors import ApiError
from gateway.forms import get_bool
from gateway.services import Services, ServicesDep
from gateway.stored_jobs import delete_job, load_job, load_transcript
from gateway.submission import probe_upload, submit_job, validate_options
from gateway.uploads import Upload, multipart_openapi, receive_upload
from gateway.waiting import JobVanished, wait_for_job
from shared import entities
from shared import scratch as scratch_files
from shared.catalogue import Stage
from shared.contracts import ElevenLabsOptions, JobParameters, TranscribeOptions
from shared.db import Job, JobStatus, WebhookEndpoint
from shared.formats.elevenlabs import ResponseOptions, to_response
from shared.webhooks import find_endpoint

log = structlog.get_logger("gateway.elevenlabs")

MAX_MULTICHANNEL_CHANNELS = 5
WEBHOOK_ACK_MESSAGE = "Request accepted. Transcription result will be sent to the webhook."

router = APIRouter(tags=["elevenlabs"], route_class=ElevenLabsRoute)
Writer = Annotated[Principal, Depends(require_scope("jobs:write", token_type="batch_scribe"))]
Reader = Annotated[Principal, Depends(require_scope("jobs:read", token_type="batch_scribe"))]


def response_options(job: Job) -> ResponseOptions:
    """The stored request options; a native job gets the defaults (per-channel jobs the multichannel shape)."""
    parameters = job.options()
    if parameters.elevenlabs is not None:
        return parameters.elevenlabs.request_options
    options = ResponseOptions(use_multi_channel=job.speaker_detection == "per_channel")
    style = parameters.enrich.redact_pii_text
    if style is not None:
        # A native job that asked for text redaction: never read back unredacted here either.
        options.entity_redaction = parameters.enrich.pii_entity_types or list(entities.ENTITY_TYPES)
        options.entity_redaction_mode = style
    return options


async def job_response(services: Services, job: Job) -> dict[str, Any]:
    """The ElevenLabs response of a finished job, or a clear error for any other state."""
    transcription_id = str(job.id)
    if job.status == JobStatus.failed.value:
        raise ApiError(400, "transcription_failed", f"transcription {transcription_id} failed: {job.error or 'unknown error'}")
    if job.status == JobStatus.cancelled.value:
        raise ApiError(400, "transcription_cancelled", f"transcription {transcription_id} was cancelled")
    if job.status != JobStatus.completed.value:
        raise ApiError(
            404, "transcript_not_ready", f"transcription {transcription_id} is still {job.status}; try again when it has finished"
        )
    transcript = await load_transcript(services, job)
    if transcript is None:
        raise ApiError(404, "transcript_not_found", f"the transcript of {transcription_id} is missing from storage")
    return to_response(transcript, response_options(job), transcription_id=transcription_id)


def _stored_request_id(job: Job) -> str | None:
    stored = job.options().elevenlabs
    return stored.request_id if stored else None


def _request_id() -> str:
    return structlog.contextvars.get_contextvars().get("request_id") or uuid.uuid4().hex


async def _speaker_detection(services: Services, request: ConvertRequest, audio: Upload) -> str:
    if request.diarize:
        return "diarize"
    if not request.use_multi_channel:
        return "none"
    info = await probe_upload(audio, services.settings)
    if info.channels > MAX_MULTICHANNEL_CHANNELS:
        raise invalid(f"use_multi_channel supports at most {MAX_MULTICHANNEL_CHANNELS} channels; this file has {info.channels}")
    # Mono audio is one channel: transcribed whole and returned in the multichannel shape.
    return "per_channel" if info.channels > 1 else "none"


def _parameters(request: ConvertRequest, parameters: JobParameters) -> JobParameters:
    transcribe = {"temperature": request.temperature, "hotwords": request.hotwords()}
    parameters.transcribe = TranscribeOptions(**{k: v for k, v in transcribe.items() if v is not None})
    parameters.elevenlabs = ElevenLabsOptions(
        request_id=_request_id(),
        webhook=request.webhook,
        webhook_id=request.webhook_id,
        webhook_metadata=request.webhook_metadata,
        request_options=request.response_options(),
    )
    return parameters


async def _check_webhook_target(services: Services, principal: Principal, webhook_id: str | None) -> None:
    """Refuse `webhook=true` when the result could be delivered nowhere."""
    async with services.sessionmaker() as db:
        if webhook_id:
            endpoint = await find_endpoint(db, principal.tenant_id, webhook_id)
            if endpoint is None or not endpoint.active:
                raise invalid(f"webhook_id {webhook_id!r} is not an active webhook endpoint of yours (see GET /v1/webhooks)")
            return
        subscribed = await db.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(
                WebhookEndpoint.tenant_id == principal.tenant_id,
                WebhookEndpoint.active.is_(True),
                WebhookEndpoint.events.contains(["job.completed"]),
            )
        )
    if not subscribed:
        raise invalid("webhook=true needs a webhook endpoint: register one with POST /v1/webhooks")


async def _submit(services: Services, principal: Principal, upload: Upload, request: ConvertRequest, scratch: Path) -> Job:
    settings = services.settings
    has_file = upload.path is not None
    if has_file + (request.source_url is not None) + (request.cloud_storage_url is not None) != 1:
        raise invalid("send exactly one of file, cloud_storage_url or source_url")
    if request.webhook:
        await _check_webhook_target(services, principal, request.webhook_id)
    audio = upload
    if request.url is not None:
        audio = await fetch_url(
            request.url,
            scratch,
            max_bytes=settings.max_upload_bytes,
            timeout=settings.url_fetch_timeout_s,
            allow_private=settings.allow_private_urls,
        )
    if request.file_format == "pcm_s16le_16":
        audio = wrap_pcm(audio, scratch)
    options = validate_options(
        settings,
        model=request.model_id,
        language=request.language,
        speaker_detection=await _speaker_detection(services, request, audio),
        # ElevenLabs' num_speakers is the most speakers to find, not an exact count.
        max_speakers=request.num_speakers if request.diarize else None,
        diarization_threshold=request.diarization_threshold,
    )
    if request.use_speaker_library:
        await known_speakers.attach(services, principal, options, [known_speakers.ALL], name="use_speaker_library")
    options.parameters = _parameters(request, options.parameters)
    enrich = request.enrich(events_available=enrichment.unavailable(settings, Stage.EVENTS) is None)
    if enrich is not None:
        enrichment.check_available(settings, enrich)
        options.parameters.enrich = enrich
    return await submit_job(services, principal, audio, options)


@router.post(
    "/v1/speech-to-text",
    openapi_extra=multipart_openapi(
        ["model_id"],
        {
            "model_id": {"type": "string"},
            "file": {"type": "string", "format": "binary"},
            "cloud_storage_url": {"type": "string"},
            "source_url": {"type": "string"},
            "language_code": {"type": "string"},
            "timestamps_granularity": {"type": "string", "enum": ["none", "word", "character"]},
            "diarize": {"type": "boolean"},
            "additional_formats": {"type": "string", "description": "JSON array of export options"},
            "file_format": {"type": "string", "enum": ["pcm_s16le_16", "other"]},
            "webhook": {"type": "boolean"},
            "use_multi_channel": {"type": "boolean"},
            "entity_detection": {"type": "string", "description": "'all', a category or types; a JSON list or repeated"},
            "entity_redaction": {"type": "string", "description": "a subset of entity_detection"},
            "entity_redaction_mode": {"type": "string", "enum": ["redacted", "entity_type", "enumerated_entity_type"]},
            "no_verbatim": {"type": "boolean", "description": "needs DALSTON_LLM_BASE_URL"},
            "detect_speaker_roles": {"type": "boolean", "description": "needs diarize=true and DALSTON_LLM_BASE_URL"},
            "use_speaker_library": {"type": "boolean", "description": "name speakers after enrolled voices (/v1/speakers)"},
            "keyterms": {"type": "string", "description": "a JSON list or repeated; faster-whisper hotwords"},
        },
    ),
)
async def convert(
    request: Request,
    principal: Writer,
    services: ServicesDep,
    enable_logging: Annotated[str | None, Query(description="false: delete the job once the response is built")] = None,
) -> JSONResponse:
    """Transcribe a file or URL; waits for the result unless `webhook=true`."""
    settings = services.settings
    retain = get_bool({"enable_logging": [enable_logging or ""]}, "enable_logging", True)
    with tempfile.TemporaryDirectory(prefix=scratch_files.prefix(scratch_files.MEDIA)) as scratch:
        async with receive_upload(request, max_bytes=settings.max_upload_bytes) as upload:
            convert_request = parse_convert(upload.fields)
            if not retain and convert_request.webhook:
                # The webhook is delivered from the stored transcript, so it cannot be deleted here.
                raise ApiError(
                    400, "feature_unavailable", "enable_logging=false (zero retention) is not available with webhook=true"
                )
            job = await _submit(services, principal, upload, convert_request, Path(scratch))

    transcription_id = str(job.id)
    if convert_request.webhook:
        ack = {
            "message": WEBHOOK_ACK_MESSAGE,
            "request_id": _stored_request_id(job),
            "transcription_id": transcription_id,
        }
        return JSONResponse(ack)
    try:
        job = await wait_for_job(services.redis, services.sessionmaker, job.id, settings.elevenlabs_sync_timeout_s)
    except TimeoutError:
        raise ApiError(
            400,
            "sync_timeout",
            f"transcription {transcription_id} is still running after {settings.elevenlabs_sync_timeout_s:g} s; it continues: "
            f"fetch it later with GET /v1/speech-to-text/transcripts/{transcription_id}, or send webhook=true for long audio",
        ) from None
    except JobVanished:
        raise ApiError(404, "transcript_not_found", f"transcription {transcription_id} was deleted while waiting") from None
    try:
        return JSONResponse(await job_response(services, job))
    finally:
        if not retain:
            await delete_job(services, principal, transcription_id)


@router.get("/v1/speech-to-text/transcripts/{transcription_id}")
async def get_transcript(transcription_id: str, principal: Reader, services: ServicesDep) -> JSONResponse:
    """A finished transcription in ElevenLabs' shape."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, transcription_id)
    return JSONResponse(await job_response(services, job))


@router.delete("/v1/speech-to-text/transcripts/{transcription_id}")
async def delete_transcript(transcription_id: str, request: Request, principal: Writer, services: ServicesDep) -> JSONResponse:
    """Delete a finished transcription with its audio."""
    job = await delete_job(services, principal, transcription_id, request)
    return JSONResponse({"message": "Transcript deleted.", "transcription_id": str(job.id)})


@router.post("/v1/single-use-token/{token_type}")
async def single_use_token(
    token_type: str,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("jobs:read", "jobs:write", "realtime"))],
    services: ServicesDep,
    ttl_seconds: Annotated[
        int, Query(ge=1, le=TOKEN_TTL_SECONDS, description="lifetime; default 15 minutes")
    ] = TOKEN_TTL_SECONDS,
) -> JSONResponse:
    """A token for one request (`?token=`): for browsers that must not hold a key. It
    carries only the scopes its type needs (of those the key has)."""
    if token_type not in TOKEN_TYPES:
        raise invalid(f"token_type must be one of {', '.join(TOKEN_TYPES)}, not {token_type!r}")
    token = await issue_token(services, principal, token_type, ttl_seconds)
    await audit.record(
        services.sessionmaker,
        audit.TOKEN_ISSUED,
        conn=request,
        principal=principal,
        details={"type": token_type, "ttl_seconds": ttl_seconds},
    )
    return JSONResponse({"token": token})
