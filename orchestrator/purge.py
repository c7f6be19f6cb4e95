"""The retention purge (shared.retention): jobs and sessions whose retention has run out
lose their media, keep their transcript, and say when on the row and in the audit log.

A job's media is everything under `jobs/{id}/` but its transcript object (the original
upload, the redacted audio, every stage's artifacts); a session's is its recording under
`sessions/{id}/audio/` (its finals in `transcript.json` stay). The row is stamped
`purged_at` in the transaction that writes the `job.purged` / `session.purged` audit
event, after the objects are gone: a purge cut short is simply done again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import keys, retention
from shared.db import AuditEvent, Job, JobStatus, RealtimeSession, RealtimeSessionStatus
from shared.storage import ObjectStore

log = structlog.get_logger()

BATCH = 100  # rows per pass; the next pass takes the rest
_TERMINAL = [s.value for s in JobStatus if s.terminal]


def remove_media(store: ObjectStore, prefix: str, keep: str | None) -> int:
    """Delete every object under `prefix` except `keep` (and its siblings in its folder);
    returns how many went."""
    removed = 0
    for child in store.list_children(prefix):
        child_prefix = f"{prefix}{child}/"
        if keep is not None and keep.startswith(child_prefix):
            removed += remove_media(store, child_prefix, keep)
        else:
            removed += store.delete_prefix(child_prefix)
    return removed


async def _due_jobs(db: AsyncSession, now: datetime) -> list[Job]:
    query = select(Job).where(
        Job.purged_at.is_(None),
        Job.retention_days >= 0,
        Job.completed_at.is_not(None),
        Job.status.in_(_TERMINAL),
        Job.completed_at + func.make_interval(0, 0, 0, Job.retention_days) <= now,
    )
    return list(await db.scalars(query.order_by(Job.completed_at).limit(BATCH)))


async def _due_sessions(db: AsyncSession, now: datetime) -> list[RealtimeSession]:
    query = select(RealtimeSession).where(
        RealtimeSession.purged_at.is_(None),
        RealtimeSession.retention_days >= 0,
        RealtimeSession.retain_audio.is_(True),
        RealtimeSession.ended_at.is_not(None),
        RealtimeSession.status != RealtimeSessionStatus.active.value,
        RealtimeSession.ended_at + func.make_interval(0, 0, 0, RealtimeSession.retention_days) <= now,
    )
    return list(await db.scalars(query.order_by(RealtimeSession.ended_at).limit(BATCH)))


async def _stamp(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: type[Job] | type[RealtimeSession],
    row_id: object,
    tenant_id: object,
    action: str,
    now: datetime,
    details: dict[str, int],
) -> None:
    async with sessionmaker() as db, db.begin():
        stamped = await db.execute(update(table).where(table.id == row_id, table.purged_at.is_(None)).values(purged_at=now))
        if stamped.rowcount:  # type: ignore[attr-defined]
            resource = "job" if table is Job else "realtime_session"
            db.add(
                AuditEvent(action=action, tenant_id=tenant_id, resource_type=resource, resource_id=str(row_id), details=details)
            )


async def purge_expired(sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, now: datetime) -> int:
    """Purge up to a batch each of the jobs and sessions due at `now`; returns how many."""
    async with sessionmaker() as db:
        jobs = await _due_jobs(db, now)
        sessions = await _due_sessions(db, now)
    for job in jobs:
        removed = await asyncio.to_thread(remove_media, store, keys.job_prefix(job.id), job.transcript_key)
        details = {"retention_days": job.retention_days, "objects": removed}
        await _stamp(sessionmaker, Job, job.id, job.tenant_id, retention.JOB_PURGED, now, details)
        log.info("job_purged", job_id=str(job.id), **details)
    for session in sessions:
        removed = await asyncio.to_thread(store.delete_prefix, keys.session_audio_prefix(session.id))
        details = {"retention_days": session.retention_days, "objects": removed}
        await _stamp(sessionmaker, RealtimeSession, session.id, session.tenant_id, retention.SESSION_PURGED, now, details)
        log.info("session_purged", session_id=str(session.id), **details)
    return len(jobs) + len(sessions)
