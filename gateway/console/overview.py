"""`GET /v1/console/overview`: the numbers on the console's front page, in one request.

Job numbers are the caller's tenant's; an admin key sees every tenant's (or one tenant's
with `?tenant_id=`) and, only for admins because they describe the whole system, the
engine queues and the realtime pool. Everything is computed by SQL aggregates, the hourly
ones bounded on `jobs.created_at` so they read an index, not the table.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import ADMIN_SCOPE, Principal, require_scope
from gateway.console.engines import LONGEST_JOB, RealtimePool, live_instances, queue_of, realtime_pool
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from shared import catalogue
from shared.contracts import JobPurpose
from shared.db import Job, JobStatus

router = APIRouter(prefix="/v1/console", tags=["console"], responses={s: {"model": ErrorResponse} for s in (400, 401, 403)})
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]

HOURS = 24
RECENT_FAILURES = 10
# Hourly completions are bucketed by completed_at, but the scan is bounded by created_at
# (the indexed column): a job that finishes more than LONGEST_JOB after it was submitted is
# left out of the hour it finished in. Task timeouts end real jobs long before that.


class JobsByStatus(BaseModel):
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class HourBucket(BaseModel):
    hour: datetime = Field(description="start of the hour (UTC)")
    created: int = Field(description="jobs submitted in the hour")
    completed: int = Field(description="jobs that completed in the hour")
    failed: int = Field(description="jobs that failed in the hour")
    audio_hours_completed: float = Field(description="audio hours of the jobs that completed in the hour")


class RecentFailure(BaseModel):
    id: uuid.UUID
    filename: str | None
    model: str
    error: str | None
    completed_at: datetime | None


class EngineQueue(BaseModel):
    engine_id: str
    stage: str
    stream: str
    length: int = Field(description="entries in the stream (acknowledged ones stay until trimmed)")
    pending: int = Field(description="delivered to an engine, not acknowledged yet (being worked on, or held by a dead engine)")
    lag: int | None = Field(description="entries not yet delivered to any engine; null when Redis cannot tell")
    live_instances: int = Field(
        description="engine processes heartbeating now (idle or busy); 0 with lag > 0 means queued work nobody will take"
    )


class Overview(BaseModel):
    tenant_id: uuid.UUID | None = Field(description="whose jobs are counted; null: every tenant (admin keys)")
    generated_at: datetime
    jobs_by_status: JobsByStatus = Field(description="every job there is now, by status")
    last_24h: list[HourBucket] = Field(description=f"{HOURS} hourly buckets, oldest first; the last is the current hour")
    throughput_audio_hours_per_hour: float = Field(description="audio hours completed over the 24 buckets, per hour")
    error_rate: float | None = Field(description="failed / (completed + failed) over the 24 buckets; null when neither")
    recent_failures: list[RecentFailure] = Field(description=f"the latest {RECENT_FAILURES} failed jobs, newest first")
    engines: list[EngineQueue] | None = Field(description="admin keys only: each engine's queue that exists in Redis")
    realtime: RealtimePool | None = Field(description="admin keys only: the realtime worker pool")


def _tenant_scope(principal: Principal, tenant_id: uuid.UUID | None) -> uuid.UUID | None:
    """The tenant whose jobs are counted (None: all). Only admins may look past their own."""
    if principal.allows(ADMIN_SCOPE):
        return tenant_id
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise ApiError(403, "insufficient_scope", "tenant_id names another tenant: only a key with the 'admin' scope may")
    return principal.tenant_id


Selection = TypeVar("Selection", bound=Select)  # whatever its row shape


def _for_tenant(query: Selection, tenant_id: uuid.UUID | None) -> Selection:
    # Internal jobs (speaker enrollment) are not transcriptions anyone submitted.
    query = query.where(Job.purpose == JobPurpose.TRANSCRIPTION.value)
    return query if tenant_id is None else query.where(Job.tenant_id == tenant_id)


async def _jobs_by_status(db: AsyncSession, tenant_id: uuid.UUID | None) -> JobsByStatus:
    rows = await db.execute(_for_tenant(select(Job.status, func.count()).group_by(Job.status), tenant_id))
    return JobsByStatus(**{status: count for status, count in rows if status in JobStatus.__members__})


async def _hourly(db: AsyncSession, tenant_id: uuid.UUID | None, since: datetime) -> list[HourBucket]:
    # Grouped by label: a repeated date_trunc(...) would carry its own bind parameter, and
    # PostgreSQL would not see the SELECT and GROUP BY expressions as the same.
    created_hour = func.date_trunc("hour", Job.created_at, "UTC").label("bucket")
    created = await db.execute(
        _for_tenant(select(created_hour, func.count()).where(Job.created_at >= since).group_by("bucket"), tenant_id)
    )
    done_hour = func.date_trunc("hour", Job.completed_at, "UTC").label("bucket")
    finished = await db.execute(
        _for_tenant(
            select(done_hour, Job.status, func.count(), func.coalesce(func.sum(Job.audio_duration), 0.0))
            .where(Job.created_at >= since - LONGEST_JOB, Job.completed_at >= since)
            .where(Job.status.in_([JobStatus.completed.value, JobStatus.failed.value]))
            .group_by("bucket", Job.status),
            tenant_id,
        )
    )
    buckets = {
        since + timedelta(hours=h): HourBucket(
            hour=since + timedelta(hours=h), created=0, completed=0, failed=0, audio_hours_completed=0.0
        )
        for h in range(HOURS)
    }
    for hour, count in created:
        if hour in buckets:
            buckets[hour].created = count
    for hour, status, count, seconds in finished:
        if hour not in buckets:
            continue  # completed_at in the future (clock skew between hosts)
        if status == JobStatus.completed.value:
            buckets[hour].completed = count
            buckets[hour].audio_hours_completed = round(float(seconds) / 3600, 6)
        else:
            buckets[hour].failed = count
    return list(buckets.values())


async def _recent_failures(db: AsyncSession, tenant_id: uuid.UUID | None) -> list[RecentFailure]:
    query = (
        select(Job)
        .where(Job.status == JobStatus.failed.value)
        .order_by(Job.completed_at.desc().nulls_last(), Job.id.desc())
        .limit(RECENT_FAILURES)
    )
    jobs = await db.scalars(_for_tenant(query, tenant_id))
    return [
        RecentFailure(id=j.id, filename=j.audio_filename, model=j.model, error=j.error, completed_at=j.completed_at) for j in jobs
    ]


async def _engines(services: Services) -> list[EngineQueue]:
    queues = []
    for engine in catalogue.ENGINES.values():
        queue = await queue_of(services, engine.id)
        if queue is None:
            continue  # never used here: no queue to show
        queues.append(
            EngineQueue(
                engine_id=engine.id,
                stage=engine.stage,
                stream=queue.stream,
                length=queue.length,
                pending=queue.pending,
                lag=queue.lag,
                live_instances=len(await live_instances(services, engine.id)),
            )
        )
    return queues


@router.get("/overview", response_model=Overview)
async def overview(
    principal: Reader,
    services: ServicesDep,
    tenant_id: Annotated[
        uuid.UUID | None, Query(description="admin keys: one tenant's numbers (default: every tenant's)")
    ] = None,
) -> Overview:
    """Jobs by status, the last 24 hours by hour, throughput, error rate and recent failures;
    for admin keys also the engine queues and the realtime pool."""
    scope = _tenant_scope(principal, tenant_id)
    now = datetime.now(UTC)
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    async with services.sessionmaker() as db:
        by_status = await _jobs_by_status(db, scope)
        hourly = await _hourly(db, scope, since)
        failures = await _recent_failures(db, scope)
    completed = sum(b.completed for b in hourly)
    failed = sum(b.failed for b in hourly)
    admin = principal.allows(ADMIN_SCOPE)
    return Overview(
        tenant_id=scope,
        generated_at=now,
        jobs_by_status=by_status,
        last_24h=hourly,
        throughput_audio_hours_per_hour=round(sum(b.audio_hours_completed for b in hourly) / HOURS, 6),
        error_rate=failed / (completed + failed) if completed + failed else None,
        recent_failures=failures,
        engines=await _engines(services) if admin else None,
        realtime=await realtime_pool(services) if admin else None,
    )
