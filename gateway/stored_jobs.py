"""Reading and deleting a tenant's stored jobs: shared by the native, ElevenLabs and OpenAI routes."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from redis.exceptions import RedisError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from gateway import audit
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.services import Services
from shared import keys
from shared.contracts import JobPurpose
from shared.db import Job, JobStatus
from shared.storage import ObjectNotFound
from shared.transcript import Transcript, Word

log = structlog.get_logger("gateway.stored_jobs")

# Longer than any task runs: a fenced job's running task sees the key when it finishes.
JOB_FENCE_TTL_S = 24 * 3600


async def load_job(db: AsyncSession, principal: Principal, job_id: str, *, for_update: bool = False) -> Job:
    """The caller's job, or 404: unknown, malformed and other tenants' ids look the same, and
    so do internal jobs (speaker enrollment), which are not the tenant's transcriptions."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        parsed = None
    query = select(Job).where(
        Job.id == parsed, Job.tenant_id == principal.tenant_id, Job.purpose == JobPurpose.TRANSCRIPTION.value
    )
    job = await db.scalar(query.with_for_update() if for_update else query) if parsed else None
    if job is None:
        raise ApiError(404, "job_not_found", f"no transcription job {job_id!r}")
    return job


async def load_transcript(services: Services, job: Job, *, named: bool = True) -> Transcript | None:
    """The stored transcript of a completed job; None before completion or if it is missing.

    Every reader (job detail, exports, ElevenLabs and OpenAI GETs) comes through here, so
    the job's speaker names (`JobParameters.speaker_names`) are applied here, once; `named=False`
    gives the pipeline's own speaker ids (what renaming validates against)."""
    if job.status != JobStatus.completed.value or not job.transcript_key:
        return None
    try:
        raw = await asyncio.to_thread(services.store.get_bytes, job.transcript_key)
    except ObjectNotFound:
        log.warning("transcript_missing", job_id=str(job.id), key=job.transcript_key)
        return None
    transcript = Transcript.model_validate_json(raw)
    # Names the refine stage inferred from context apply too, under the user's own.
    names = {**transcript.speaker_names, **job.options().speaker_names}
    return with_speaker_names(transcript, names) if named else transcript


def speaker_ids(transcript: Transcript) -> list[str]:
    """Every speaker label of a transcript as stored, in the order it lists them."""
    labels = [*transcript.speakers]
    labels += [s.speaker for s in transcript.segments if s.speaker]
    labels += [w.speaker for w in transcript.words if w.speaker]
    labels += [w.speaker for s in transcript.segments for w in s.words if w.speaker]
    return list(dict.fromkeys(labels))


def with_speaker_names(transcript: Transcript, names: dict[str, str]) -> Transcript:
    """A copy of `transcript` whose speaker labels are replaced by their names, if any."""
    if not names:
        return transcript

    def name(label: str | None) -> str | None:
        return names.get(label, label) if label is not None else None

    def words(items: list[Word]) -> list[Word]:
        return [w.model_copy(update={"speaker": name(w.speaker)}) if w.speaker in names else w for w in items]

    return transcript.model_copy(
        update={
            "speakers": [names.get(s, s) for s in transcript.speakers],
            "words": words(transcript.words),
            "segments": [s.model_copy(update={"speaker": name(s.speaker), "words": words(s.words)}) for s in transcript.segments],
            "audio_events": transcript.audio_events
            and [e.model_copy(update={"speaker": name(e.speaker)}) for e in transcript.audio_events],
            # Roles and library matches follow their speakers under the new labels (the
            # ElevenLabs response reads them).
            "speaker_roles": {names.get(label, label): role for label, role in transcript.speaker_roles.items()},
            "known_speakers": {names.get(label, label): match for label, match in transcript.known_speakers.items()},
        }
    )


async def fence_job(services: Services, job_id: uuid.UUID, reason: keys.JobFence) -> bool:
    """Tell engines the job's work is no longer wanted (cancelled or deleted): they skip its
    queued tasks and discard what a running one produces (engines.runner). False when Redis
    is down; what a task then writes under a deleted job is removed by the orchestrator's
    storage sweeper."""
    try:
        await services.redis.set(keys.job_cancelled(job_id), reason, ex=JOB_FENCE_TTL_S)
    except RedisError as exc:
        log.warning("job_fence_failed", job_id=str(job_id), error=f"{type(exc).__name__}: {exc}")
        return False
    return True


async def delete_job(services: Services, principal: Principal, job_id: str, conn: HTTPConnection | None = None) -> Job:
    """Delete a finished job of the caller's with its audio and outputs; returns the deleted row."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
        if not JobStatus(job.status).terminal:
            raise ApiError(409, "job_not_terminal", f"the job is {job.status}; cancel it before deleting")
        # A cancelled (or failed) job's task may still be running: fenced before its prefix
        # goes, so what it writes afterwards is discarded, not left under a deleted job.
        await fence_job(services, job.id, "deleted")
        # Storage first: if the row delete then fails, a retry finishes the job.
        removed = await asyncio.to_thread(services.store.delete_prefix, keys.job_prefix(job.id))
        await db.execute(delete(Job).where(Job.id == job.id))
        audit.add(db, audit.JOB_DELETED, conn=conn, principal=principal, resource_type="job", resource_id=job.id)
        await db.commit()
    log.info("job_deleted", job_id=str(job.id), objects=removed)
    return job
