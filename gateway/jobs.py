"""Native batch API: /v1/audio/transcriptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import enrichment, forms, known_speakers, openai
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.job_filters import JobFilters, job_filters
from gateway.pagination import newest_first
from gateway.schemas import AudioInfo, ErrorResponse, JobDetail, JobList, JobSummary, Stage
from gateway.services import Services, ServicesDep
from gateway.stored_jobs import delete_job, fence_job, load_job, load_transcript
from gateway.submission import PIPELINES, submit_job, validate_options
from gateway.uploads import multipart_openapi, receive_upload
from shared import catalogue, keys, retention, streams
from shared.catalogue import SpeakerDetection
from shared.contracts import Event, JobPurpose
from shared.db import Job, JobStatus, Task, TaskStatus
from shared.formats.redaction import redact
from shared.transcript import Transcript
from shared.webhooks import enqueue_deliveries

log = structlog.get_logger("gateway.jobs")

TRANSCRIPT_MISSING = (
    "transcript_missing: the job completed but its transcript is missing from storage (deleted outside Dalston "
    "or lost); re-run the job (POST /v1/audio/transcriptions/{id}/rerun) while its audio is stored"
)
_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413)}

router = APIRouter(prefix="/v1/audio/transcriptions", tags=["batch"], responses=_ERRORS)
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]
Writer = Annotated[Principal, Depends(require_scope("jobs:write"))]


# --- views --------------------------------------------------------------------------


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        status=job.status,
        model=job.model,
        language=job.language,
        speaker_detection=job.speaker_detection,
        audio=AudioInfo(
            filename=job.audio_filename,
            bytes=job.audio_bytes,
            format=job.audio_format,
            duration=job.audio_duration,
            channels=job.audio_channels,
            sample_rate=job.audio_sample_rate,
        ),
        error=job.error,
        warnings=job.warnings or [],
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        source_session_id=job.source_session_id,
    )


def dag_order(tasks: list[Task]) -> list[Task]:
    """Tasks with every dependency before its dependents; ties by creation, then name."""
    remaining = sorted(tasks, key=lambda t: (t.created_at, t.name))
    done: set[str] = set()
    ordered: list[Task] = []
    while remaining:
        ready = [t for t in remaining if set(t.depends_on or ()) <= done] or remaining  # a broken graph still lists everything
        ordered += ready
        done |= {t.name for t in ready}
        remaining = [t for t in remaining if t.name not in done]
    return ordered


def _stage(task: Task) -> Stage:
    duration_ms = None
    if task.started_at and task.completed_at:
        duration_ms = round((task.completed_at - task.started_at).total_seconds() * 1000, 1)
    return Stage(
        name=task.name,
        stage=task.stage,
        engine_id=task.engine_id,
        status=task.status,
        attempt=task.attempt,
        queued_at=task.queued_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        duration_ms=duration_ms,
        error=task.error,
    )


def job_detail(job: Job, tasks: list[Task], transcript: Transcript | None) -> JobDetail:
    completed = sum(t.status == TaskStatus.completed.value for t in tasks)
    if tasks:
        progress = completed / len(tasks)
    else:
        progress = 1.0 if job.status == JobStatus.completed.value else 0.0
    parameters = job.options()
    style = parameters.enrich.redact_pii_text
    return JobDetail(
        **job_summary(job).model_dump(),
        progress=progress,
        stages=[_stage(t) for t in dag_order(tasks)],
        transcript=transcript,
        # Every name the served labels carry (the pipeline's, under the user's), so a label
        # maps back to its id (the console renames by id).
        speaker_names={**transcript.speaker_names, **parameters.speaker_names} if transcript is not None else {},
        entities=transcript.entities if transcript is not None else None,
        summary=transcript.summary if transcript is not None else None,
        redacted_text=redact(transcript, style).text if transcript is not None and style is not None else None,
        retention_days=job.retention_days,
        purged_at=job.purged_at,
    )


async def load_detail(services: Services, db: AsyncSession, job: Job) -> JobDetail:
    tasks = list(await db.scalars(select(Task).where(Task.job_id == job.id)))
    transcript = await load_transcript(services, job)
    detail = job_detail(job, tasks, transcript)
    if transcript is None and job.status == JobStatus.completed.value:
        # A completed job always stored one: say it is gone rather than show a bare null.
        detail.warnings = [*detail.warnings, TRANSCRIPT_MISSING]
    return detail


# --- cursor -------------------------------------------------------------------------


# --- routes -------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=JobDetail,
    openapi_extra=multipart_openapi(
        ["file"],
        {
            "file": {"type": "string", "format": "binary"},
            "model": {"type": "string"},
            "language": {"type": "string", "description": "ISO 639-1 code; omit to detect"},
            "speaker_detection": {"type": "string", "enum": list(SpeakerDetection)},
            "num_speakers": {"type": "integer", "minimum": 1, "maximum": 32},
            "min_speakers": {"type": "integer", "minimum": 1, "maximum": 32},
            "max_speakers": {"type": "integer", "minimum": 1, "maximum": 32},
            "diarization_threshold": {"type": "number", "minimum": 0.1, "maximum": 0.4},
            "diarizer": {"type": "string", "enum": list(catalogue.engines_for(catalogue.Stage.DIARIZE, selectable=True))},
            "known_speakers": {
                "type": "array",
                "items": {"type": "string"},
                "description": "enrolled speaker ids (GET /v1/speakers) or 'all', repeated or comma-separated;"
                " needs speaker_detection=diarize",
            },
            "align": {"type": "boolean", "description": "refine word timestamps by forced alignment"},
            "pipeline": {"type": "string", "enum": list(PIPELINES)},
            "pii_detection": {"type": "boolean", "description": "find entities (names, numbers, ...) in the transcript"},
            "pii_entity_types": {
                "type": "array",
                "items": {"type": "string"},
                "description": "'all', categories or types (GET /v1/audio/enrichment); repeated or comma-separated",
            },
            "redact_pii_text": {"type": "string", "enum": ["redacted", "entity_type", "enumerated_entity_type"]},
            "redact_pii_audio": {"type": "boolean"},
            "pii_redaction_mode": {"type": "string", "enum": list(enrichment.AUDIO_MODES)},
            "pii_audio_buffer_s": {"type": "number", "minimum": 0, "maximum": 2},
            "delete_original_audio": {"type": "boolean"},
            "llm_cleanup": {"type": "boolean", "description": "needs DALSTON_LLM_BASE_URL"},
            "no_verbatim": {"type": "boolean", "description": "remove fillers and false starts; needs DALSTON_LLM_BASE_URL"},
            "summary": {"type": "boolean", "description": "needs DALSTON_LLM_BASE_URL"},
            "detect_emotions": {"type": "boolean", "description": "emotion per segment; needs DALSTON_EMOTION_MODEL"},
            "detect_events": {"type": "boolean", "description": "laughter, applause, music ...; needs DALSTON_EVENTS_MODEL"},
            "retention": {
                "type": "integer",
                "minimum": -1,
                "maximum": 36500,
                "description": "days the audio is kept after the job finishes (-1 keep, 0 none); default: the tenant's",
            },
        },
    ),
)
async def create_transcription(
    request: Request,
    principal: Writer,
    services: ServicesDep,
) -> JobDetail | Response:
    """Submit an audio file for batch transcription. The file streams to storage.

    OpenAI-style requests (see `gateway.openai.is_openai_request`) share this path: they
    are answered synchronously in OpenAI's format instead of with a job.
    """
    async with receive_upload(request, max_bytes=services.settings.max_upload_bytes) as upload:
        if openai.is_openai_request(upload.fields, request.headers):
            return await openai.handle(services, principal, upload, "transcribe")
        try:
            num_speakers = forms.get_int(upload.fields, "num_speakers")
            min_speakers = forms.get_int(upload.fields, "min_speakers")
            max_speakers = forms.get_int(upload.fields, "max_speakers")
            diarization_threshold = forms.get_float(upload.fields, "diarization_threshold")
            align = bool(forms.get_bool(upload.fields, "align", False))
            retention_days = retention.parse(upload.get("retention"))
        except (forms.FieldError, retention.InvalidRetention) as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from exc
        options = validate_options(
            services.settings,
            model=upload.get("model"),
            language=upload.get("language"),
            speaker_detection=upload.get("speaker_detection"),
            diarizer=upload.get("diarizer"),
            pipeline=upload.get("pipeline"),
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            diarization_threshold=diarization_threshold,
            align=align,
        )
        asked = known_speakers.requested(upload.fields)
        if asked is not None:
            await known_speakers.attach(services, principal, options, asked)
        enrich = enrichment.parse(upload.fields)
        if enrich is not None:
            enrichment.check_available(services.settings, enrich)
            options.parameters.enrich = enrich
        job = await submit_job(services, principal, upload, options, retention_days=retention_days)
    return job_detail(job, [], None)


@router.get("", response_model=JobList)
async def list_transcriptions(
    principal: Reader,
    services: ServicesDep,
    filters: Annotated[JobFilters, Depends(job_filters)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
) -> JobList:
    """The caller's jobs, newest first, narrowed by any of the filters (ANDed)."""
    query = filters.apply(select(Job).where(Job.tenant_id == principal.tenant_id, Job.purpose == JobPurpose.TRANSCRIPTION.value))
    async with services.sessionmaker() as db:
        jobs, next_cursor = await newest_first(db, query, Job.created_at, Job.id, cursor=cursor, limit=limit)
    return JobList(jobs=[job_summary(j) for j in jobs], next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/{job_id}", response_model=JobDetail)
async def get_transcription(
    job_id: str,
    principal: Reader,
    services: ServicesDep,
) -> JobDetail:
    """Status, stages and, once completed, the transcript."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
        return await load_detail(services, db, job)


@router.post("/{job_id}/cancel", response_model=JobDetail)
async def cancel_transcription(
    job_id: str,
    principal: Writer,
    services: ServicesDep,
) -> JobDetail:
    """Stop a pending or running job. Cancelling a cancelled job is a no-op."""
    async with services.sessionmaker() as db:
        async with db.begin():
            job = await load_job(db, principal, job_id, for_update=True)
            newly_cancelled = job.status in (JobStatus.pending.value, JobStatus.running.value)
            if newly_cancelled:
                job.status = JobStatus.cancelled.value
                job.completed_at = datetime.now(UTC)
                await db.execute(
                    update(Task)
                    .where(Task.job_id == job.id, Task.status.in_([TaskStatus.pending.value, TaskStatus.ready.value]))
                    .values(status=TaskStatus.skipped.value)
                )
                await enqueue_deliveries(db, job)  # the outbox row commits with the cancellation
            elif job.status != JobStatus.cancelled.value:
                raise ApiError(409, "job_not_cancellable", f"the job is already {job.status}")

        if newly_cancelled:
            key = str(job.id)
            # The fence stops engines (gateway.stored_jobs.fence_job); the event tells the
            # orchestrator; the notification wakes synchronous waiters.
            await fence_job(services, job.id, "cancelled")
            try:
                await streams.publish(services.redis, keys.EVENTS_STREAM, Event(type="job.cancelled", job_id=key).model_dump())
                await services.redis.publish(keys.job_done_channel(key), json.dumps({"job_id": key, "status": job.status}))
            except RedisError as exc:
                # The cancellation is committed in PostgreSQL: the orchestrator advances nothing
                # of a cancelled job, and the reconciler enqueues none of its tasks.
                log.warning("job_cancel_not_announced", job_id=key, error=f"{type(exc).__name__}: {exc}")
            log.info("job_cancelled", job_id=key)
        return await load_detail(services, db, job)


@router.delete("/{job_id}", status_code=204, response_class=Response)
async def delete_transcription(
    job_id: str,
    request: Request,
    principal: Writer,
    services: ServicesDep,
) -> Response:
    """Delete a finished job with its audio and outputs."""
    await delete_job(services, principal, job_id, request)
    return Response(status_code=204)
