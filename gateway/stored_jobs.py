"""Reading and deleting a tenant's stored jobs: shared by the native, ElevenLabs and OpenAI routes."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from gateway import audit
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.services import Services
from shared import keys
from shared.db import Job, JobStatus
from shared.storage import ObjectNotFound
from shared.transcript import Transcript

log = structlog.get_logger("gateway.stored_jobs")


async def load_job(db: AsyncSession, principal: Principal, job_id: str, *, for_update: bool = False) -> Job:
    """The caller's job, or 404: unknown, malformed and other tenants' ids look the same."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        parsed = None
    query = select(Job).where(Job.id == parsed, Job.tenant_id == principal.tenant_id)
    job = await db.scalar(query.with_for_update() if for_update else query) if parsed else None
    if job is None:
        raise ApiError(404, "job_not_found", f"no transcription job {job_id!r}")
    return job


async def load_transcript(services: Services, job: Job) -> Transcript | None:
    """The stored transcript of a completed job; None before completion or if it is missing."""
    if job.status != JobStatus.completed.value or not job.transcript_key:
        return None
    try:
        raw = await asyncio.to_thread(services.store.get_bytes, job.transcript_key)
    except ObjectNotFound:
        log.warning("transcript_missing", job_id=str(job.id), key=job.transcript_key)
        return None
    return Transcript.model_validate_json(raw)


async def delete_job(services: Services, principal: Principal, job_id: str, conn: HTTPConnection | None = None) -> Job:
    """Delete a finished job of the caller's with its audio and outputs; returns the deleted row."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
        if not JobStatus(job.status).terminal:
            raise ApiError(409, "job_not_terminal", f"the job is {job.status}; cancel it before deleting")
        # Storage first: if the row delete then fails, a retry finishes the job.
        removed = await asyncio.to_thread(services.store.delete_prefix, keys.job_prefix(job.id))
        await db.execute(delete(Job).where(Job.id == job.id))
        audit.add(db, audit.JOB_DELETED, conn=conn, principal=principal, resource_type="job", resource_id=job.id)
        await db.commit()
    log.info("job_deleted", job_id=str(job.id), objects=removed)
    return job
