"""Finds what lost events, a lost Redis or a dead engine left behind.

PostgreSQL is the source of truth; these queries only nominate candidates. The service
re-checks each one under the job lock before acting, so a racing event handler or a
second orchestrator never makes it act twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import engine_heartbeat
from shared.db import Job, JobStatus, RealtimeSession, RealtimeSessionStatus, Task, TaskStatus
from shared.keys import ENGINE_GROUP, EVENTS_STREAM, ORCHESTRATOR_GROUP, engine_stream
from shared.keys import realtime_session as session_key
from shared.streams import in_flight


@dataclass(frozen=True)
class QueuedTask:
    id: uuid.UUID
    job_id: uuid.UUID
    engine_id: str
    stream_message_id: str | None
    queued_at: datetime | None


async def orphan_jobs(db: AsyncSession, created_before: datetime) -> list[uuid.UUID]:
    """Pending jobs with no tasks: their job.created event was lost."""
    query = select(Job.id).where(
        Job.status == JobStatus.pending.value,
        Job.created_at < created_before,
        ~exists().where(Task.job_id == Job.id),
    )
    return list(await db.scalars(query))


async def queued_tasks(db: AsyncSession) -> list[QueuedTask]:
    query = (
        select(Task.id, Task.job_id, Task.engine_id, Task.stream_message_id, Task.queued_at)
        .join(Job, Job.id == Task.job_id)
        .where(Task.status == TaskStatus.ready.value, Job.status == JobStatus.running.value)
    )
    return [QueuedTask(*row) for row in await db.execute(query)]


async def running_tasks(db: AsyncSession) -> list[tuple[Job, Task]]:
    query = (
        select(Job, Task)
        .join(Task, Task.job_id == Job.id)
        .where(Task.status == TaskStatus.running.value, Job.status == JobStatus.running.value)
    )
    return [(job, task) for job, task in await db.execute(query)]


async def without_message(r: aioredis.Redis, tasks: list[QueuedTask], queued_before: datetime) -> list[QueuedTask]:
    """Ready tasks whose stream message is gone.

    A message stays in its stream after the engine acks it (engines publish their result
    event before acking), so "still in the stream" covers unread, in-progress and
    finished-but-event-not-yet-handled alike. A task with no recorded id is lost only if
    it has been queued a while: the id is written just after the XADD.
    """
    with_id = [t for t in tasks if t.stream_message_id]
    async with r.pipeline(transaction=False) as pipe:
        for t in with_id:
            msg_id = t.stream_message_id
            assert msg_id is not None  # with_id holds only tasks that have one
            pipe.xrange(engine_stream(t.engine_id), min=msg_id, max=msg_id, count=1)
        found = await pipe.execute() if with_id else []
    lost = [t for t, entries in zip(with_id, found) if not entries]
    lost += [t for t in tasks if not t.stream_message_id and t.queued_at is not None and t.queued_at < queued_before]
    return lost


async def unreported(r: aioredis.Redis, tasks: list[QueuedTask]) -> list[QueuedTask]:
    """Ready tasks (their messages in their streams) that an engine has finished while no event
    about them is left to handle: their task.started/completed went missing (dead-lettered, say),
    and nothing else would ever move them on.

    An engine acknowledges a task only after publishing its outcome (or for a job no longer
    running, which `tasks` leaves out), so the acknowledgements are read first and the events
    still in flight after them: an outcome published before an acknowledgement is then seen.
    """
    with_id = [(t, t.stream_message_id) for t in tasks if t.stream_message_id]
    delivered: dict[str, tuple[int, int] | None] = {}
    for engine in {t.engine_id for t, _ in with_id}:
        try:
            groups = await r.xinfo_groups(engine_stream(engine))
        except ResponseError:
            groups = []  # the stream is gone: without_message's case
        info = next((g for g in groups if g["name"] == ENGINE_GROUP), None)
        delivered[engine] = _stream_id(info["last-delivered-id"]) if info else None
    # Delivered at all (no group yet: no engine has read the stream), then not pending.
    with_id = [(t, msg_id) for t, msg_id in with_id if (last := delivered[t.engine_id]) and _stream_id(msg_id) <= last]
    async with r.pipeline(transaction=False) as pipe:
        for t, msg_id in with_id:
            pipe.xpending_range(engine_stream(t.engine_id), ENGINE_GROUP, min=msg_id, max=msg_id, count=1)
        pending = await pipe.execute() if with_id else []
    done = [t for (t, _), held in zip(with_id, pending) if not held]
    if not done:
        return []
    reported = {m.data.get("task_id") for m in await in_flight(r, EVENTS_STREAM, ORCHESTRATOR_GROUP)}
    return [t for t in done if str(t.id) not in reported]


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


async def unserved(r: aioredis.Redis, tasks: list[QueuedTask], queued_before: datetime) -> list[QueuedTask]:
    """Tasks queued since before `queued_before` for an engine with no live instance (by its
    heartbeat: a busy or idle engine beats, a dead one expires): a stage whose engine is not
    deployed (or keeps crashing) would otherwise wait forever."""
    waiting = [t for t in tasks if t.queued_at is not None and t.queued_at < queued_before]
    alive = {engine: bool(await engine_heartbeat.instances(r, engine)) for engine in {t.engine_id for t in waiting}}
    return [t for t in waiting if not alive[t.engine_id]]


async def abandoned_sessions(db: AsyncSession, r: aioredis.Redis, started_before: datetime) -> list[uuid.UUID]:
    """Realtime sessions still `active` whose worker lease has expired: the gateway serving
    them stopped without finishing the row (it renews the lease for as long as it lives)."""
    query = select(RealtimeSession.id).where(
        RealtimeSession.status == RealtimeSessionStatus.active.value, RealtimeSession.started_at < started_before
    )
    ids = list(await db.scalars(query))
    if not ids:
        return []
    async with r.pipeline(transaction=False) as pipe:
        for session_id in ids:
            pipe.exists(session_key(str(session_id)))
        alive = await pipe.execute()
    return [session_id for session_id, live in zip(ids, alive) if not live]
