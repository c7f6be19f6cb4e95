"""The orchestrator service: consumes events, drives jobs, reconciles.

One event = one transaction that locks the job row; the event is acked after commit.
Stream messages and notifications go out after commit too, so an engine never sees a
task the database does not have; if the process dies in between, the reconciler
re-publishes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import redis.asyncio as aioredis
import structlog
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator import metrics, purge, reconciler, transitions
from orchestrator.transitions import Effects, Tasks, utcnow
from orchestrator.webhooks import WebhookDeliverer
from shared import metrics_http
from shared.contracts import Event
from shared.db import Job, JobStatus, RealtimeSession, RealtimeSessionStatus, Task, TaskStatus, get_engine, get_sessionmaker
from shared.keys import (
    DLQ_STREAM,
    EVENTS_STREAM,
    JOBS_ROOT,
    ORCHESTRATOR_GROUP,
    SESSIONS_ROOT,
    engine_stream,
    job_done_channel,
)
from shared.logs import configure
from shared.outages import unavailable
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore, make_store
from shared.streams import (
    Liveness,
    Message,
    ack,
    claim_dead,
    claim_idle,
    connect,
    ensure_group,
    in_flight,
    publish,
    read_group,
)
from shared.webhooks import enqueue_deliveries

# Events held this long by another orchestrator are taken whatever its liveness key says (a
# fallback: a dead orchestrator's events are claimed as soon as its key expires).
CLAIM_IDLE_MS = 30_000
DEAD_CHECK_INTERVAL_S = 1.0
PENDING_GRACE_S = 10.0  # how long a job may wait for job.created, or a task for its message id

log = structlog.get_logger()

JobStep = Callable[[AsyncSession, Job, Tasks], Awaitable[Effects]]


class Orchestrator:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        settings: Settings,
        *,
        consumer: str | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        pending_grace_s: float = PENDING_GRACE_S,
        block_ms: int = 1_000,
        store: ObjectStore | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.settings = settings
        self.consumer = consumer or f"orchestrator-{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self.pending_grace_s = pending_grace_s
        self.block_ms = block_ms
        self._next_claim = 0.0
        self._next_dead_check = 0.0
        self._own_pending = True  # held events of a consumer of the same name (a restart)
        self.store = store  # None: no storage sweeping
        self._next_sweep = 0.0
        self.liveness = Liveness(redis, ORCHESTRATOR_GROUP, self.consumer, settings.consumer_liveness_ttl_s)

    # --- main loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_group(self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP)
        # Alive before the first read, so no peer ever takes this consumer for a dead one.
        await self.liveness.beat()
        alive = asyncio.create_task(self.liveness.run())
        log.info("orchestrator_started", consumer=self.consumer)
        reconciling = asyncio.create_task(self._reconcile_forever(stop))
        try:
            while not stop.is_set():
                try:
                    await self.poll()
                except Exception as exc:
                    if unavailable(exc) is None:
                        raise
                    log.warning("infrastructure_unavailable_backing_off", error=repr(exc))
                    self._own_pending = True  # the deferred event is ours: read it again first
                    await _sleep_unless(stop, 1.0)
        finally:
            reconciling.cancel()
            alive.cancel()
            await asyncio.gather(reconciling, alive, return_exceptions=True)
            try:
                await self.liveness.remove()  # peers take over what is left at once
            except Exception as exc:
                if unavailable(exc) is None:
                    raise
            log.info("orchestrator_stopped", consumer=self.consumer)

    async def poll(self) -> int:
        """Handle one batch of events (waiting up to block_ms for some). Returns how many."""
        messages: list[Message] = []
        if self._own_pending:
            messages += await read_group(self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP, self.consumer, count=16, own=True)
            self._own_pending = bool(messages)
            if messages:
                for message in messages:
                    await self.process(message)
                return len(messages)
        if time.monotonic() >= self._next_dead_check:
            self._next_dead_check = time.monotonic() + DEAD_CHECK_INTERVAL_S
            dead = await claim_dead(self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP, self.consumer, count=16)
            metrics.EVENTS_RECLAIMED.labels("dead").inc(len(dead))
            messages += dead
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self.claim_idle_ms / 3000
            idle = await claim_idle(self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP, self.consumer, min_idle_ms=self.claim_idle_ms)
            metrics.EVENTS_RECLAIMED.labels("idle").inc(len(idle))
            messages += idle
        messages += await read_group(
            self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP, self.consumer, count=16, block_ms=self.block_ms
        )
        for message in messages:
            await self.process(message)
        return len(messages)

    async def process(self, message: Message) -> None:
        try:
            event = Event.model_validate(message.data)
        except ValidationError as exc:
            log.error("undecodable_event_dead_lettered", stream_id=message.id, data=message.data, error=str(exc))
            await self._dead_letter(message, str(exc))
        else:
            ids = {"job_id": event.job_id} | ({"task_id": event.task_id} if event.task_id else {})
            with structlog.contextvars.bound_contextvars(**ids):
                try:
                    await self.transact(event.job_id, self._handler(event))
                except Exception as exc:
                    if unavailable(exc) is not None:
                        # Not the event's fault (PostgreSQL or Redis down or starting up): left
                        # unacked, it is claimed again (by us or a peer) once idle, and handlers
                        # are idempotent. The caller backs off.
                        log.warning("event_deferred", stream_id=message.id, error=repr(exc))
                        raise
                    log.exception("event_dead_lettered", stream_id=message.id, data=message.data)
                    await self._dead_letter(message, repr(exc))
        await ack(self.redis, message, ORCHESTRATOR_GROUP)

    def _handler(self, event: Event) -> JobStep:
        async def step(db: AsyncSession, job: Job, tasks: Tasks) -> Effects:
            return await transitions.handle(db, job, tasks, event, self.settings)

        return step

    async def _dead_letter(self, message: Message, error: str) -> None:
        await publish(self.redis, DLQ_STREAM, {"stream_id": message.id, "event": message.data, "error": error})
        metrics.DEAD_LETTERED.inc()

    # --- transactions and their effects ---------------------------------------------

    async def transact(self, job_id: str | uuid.UUID, step: JobStep) -> None:
        """Run `step` on the locked job and its tasks in one transaction, then perform its effects."""
        async with self.sessionmaker() as db:
            async with db.begin():
                job = await db.get(Job, uuid.UUID(str(job_id)), with_for_update=True)
                if job is None:
                    log.warning("event_for_unknown_job", job_id=str(job_id))
                    return
                tasks = {t.name: t for t in await db.scalars(select(Task).where(Task.job_id == job.id))}
                effects = await step(db, job, tasks)
                if effects.finished:
                    await enqueue_deliveries(db, job)  # the outbox row commits with the final state
        await self.perform(effects)

    async def perform(self, effects: Effects) -> None:
        for queued in effects.enqueued:
            message = queued.message
            message_id = await publish(self.redis, engine_stream(message.engine_id), message.model_dump())
            # Only if the task was not re-enqueued meanwhile: the id belongs to this enqueue.
            async with self.sessionmaker() as db, db.begin():
                await db.execute(
                    update(Task)
                    .where(Task.id == uuid.UUID(message.task_id), Task.queued_at == queued.queued_at)
                    .values(stream_message_id=message_id)
                )
            log.info("task_enqueued", job_id=message.job_id, task_id=message.task_id, task=message.name, attempt=message.attempt)
        for engine_id in effects.retried:
            metrics.RETRIES.labels(engine_id).inc()
        for job_id, status in effects.finished:
            metrics.JOBS.labels(status).inc()
            await self.redis.publish(job_done_channel(job_id), json.dumps({"job_id": job_id, "status": status}))
        if effects.finished:
            await self.purge_expired()  # retention 0: the audio goes right after processing

    async def purge_expired(self) -> int:
        """Remove the media of jobs and sessions whose retention has run out (orchestrator.purge).
        Never raises: a purge that fails now is due again on the next pass."""
        if self.store is None:
            return 0
        try:
            return await purge.purge_expired(self.sessionmaker, self.store, utcnow())
        except Exception as exc:
            log.warning("purge_failed", error=f"{type(exc).__name__}: {exc}")
            return 0

    # --- reconciliation ---------------------------------------------------------------

    async def reconcile(self) -> None:
        now = utcnow()
        grace = now - timedelta(seconds=self.pending_grace_s)
        async with self.sessionmaker() as db:
            orphans = await reconciler.orphan_jobs(db, grace)
            queued = await reconciler.queued_tasks(db)
            running = await reconciler.running_tasks(db)

        if orphans:
            # A job.created still on the stream (not yet read, or held by a consumer: a dead
            # one's is claimed within seconds) is late, not lost: leave it to its handler.
            waiting = {
                m.data.get("job_id")
                for m in await in_flight(self.redis, EVENTS_STREAM, ORCHESTRATOR_GROUP)
                if m.data.get("type") == "job.created"
            }
            for job_id in orphans:
                if str(job_id) in waiting:
                    log.info("job_created_not_handled_yet", job_id=str(job_id))
                    continue
                log.warning("job_created_lost_expanding", job_id=str(job_id))
                await self.transact(job_id, lambda db, job, tasks: transitions.expand(db, job, tasks, self.settings))

        lost = await reconciler.without_message(self.redis, queued, grace)
        for seen in lost:
            log.warning("task_message_lost_republishing", job_id=str(seen.job_id), task_id=str(seen.id))
            await self.transact(seen.job_id, _requeue(seen))
        for seen in await reconciler.unreported(self.redis, [t for t in queued if t not in lost]):
            log.warning("task_outcome_lost_requeueing", job_id=str(seen.job_id), task_id=str(seen.id))
            await self.transact(seen.job_id, _requeue(seen))

        for job, task in running:
            if transitions.timed_out(job, task, self.settings, now) is not None:
                await self.transact(job.id, _time_out(task.id, task.attempt, self.settings, now))

        lease = now - timedelta(seconds=self.settings.realtime_lease_ttl_s)
        async with self.sessionmaker() as db, db.begin():
            for session_id in await reconciler.abandoned_sessions(db, self.redis, lease):
                log.warning("realtime_session_abandoned", session_id=str(session_id))
                await db.execute(
                    update(RealtimeSession)
                    .where(RealtimeSession.id == session_id, RealtimeSession.status == RealtimeSessionStatus.active.value)
                    .values(
                        status=RealtimeSessionStatus.interrupted.value,
                        ended_at=now,
                        error="the gateway serving this session stopped",
                    )
                )

        patience = now - timedelta(seconds=self.settings.engine_unavailable_after_s)
        for seen in await reconciler.unserved(self.redis, queued, patience):
            log.warning("no_engine_for_task", job_id=str(seen.job_id), engine=seen.engine_id)
            await self.transact(seen.job_id, _no_engine(seen, self.settings.engine_unavailable_after_s))

    async def sweep_storage(self) -> int:
        """Delete the prefixes under jobs/ and sessions/ that no row owns and nothing has been
        written to for `storage_sweep_grace_s`; returns how many objects went."""
        if self.store is None:
            return 0
        store = self.store
        cutoff = time.time() - self.settings.storage_sweep_grace_s
        removed = 0
        for root, table in ((JOBS_ROOT, Job), (SESSIONS_ROOT, RealtimeSession)):
            ids: dict[uuid.UUID, str] = {}
            for name in await asyncio.to_thread(store.list_children, root):
                try:
                    ids[uuid.UUID(name)] = name
                except ValueError:
                    continue  # not a name we give: not ours to delete
            if not ids:
                continue
            async with self.sessionmaker() as db:
                owned = set(await db.scalars(select(table.id).where(table.id.in_(list(ids)))))
            for unowned in ids.keys() - owned:
                prefix = f"{root}{ids[unowned]}/"
                newest = await asyncio.to_thread(store.newest_mtime, prefix)
                if newest is not None and newest > cutoff:
                    continue  # being written now: a row may be on its way
                count = await asyncio.to_thread(store.delete_prefix, prefix)
                removed += count
                log.warning(
                    "orphan_objects_deleted",
                    prefix=prefix,
                    objects=count,
                    idle_s=None if newest is None else round(time.time() - newest),
                )
        return removed

    async def refresh_metrics(self, stop: asyncio.Event) -> None:
        """Keep the stream and DLQ gauges current (orchestrator.metrics) until `stop`."""
        while not stop.is_set():
            try:
                await metrics.refresh_streams(self.redis)
            except Exception as exc:
                if unavailable(exc) is None:
                    raise
                log.debug("metrics_refresh_deferred", error=repr(exc))
            await _sleep_unless(stop, self.settings.metrics_refresh_interval_s)

    async def _reconcile_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.store is not None and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self.settings.storage_sweep_interval_s
                try:
                    await self.sweep_storage()
                except Exception as exc:
                    log.warning("storage_sweep_failed", error=f"{type(exc).__name__}: {exc}")
            await self.purge_expired()
            try:
                await self.reconcile()
            except Exception as exc:
                if unavailable(exc) is None:
                    log.exception("reconciliation_failed")
                else:  # PostgreSQL or Redis is down: the next pass catches up
                    log.warning("reconciliation_deferred", error=f"{type(exc).__name__}: {exc}")
            await _sleep_unless(stop, self.settings.reconcile_interval_s)


def _requeue(seen: reconciler.QueuedTask) -> JobStep:
    async def step(db: AsyncSession, job: Job, tasks: Tasks) -> Effects:
        task = next((t for t in tasks.values() if t.id == seen.id), None)
        if task is None:
            return Effects()
        unchanged = (
            job.status == JobStatus.running.value
            and task.status == TaskStatus.ready.value
            and task.stream_message_id == seen.stream_message_id
            and task.queued_at == seen.queued_at
        )
        return transitions.enqueue(job, tasks, task) if unchanged else Effects()

    return step


def _no_engine(seen: reconciler.QueuedTask, waited_s: float) -> JobStep:
    async def step(db: AsyncSession, job: Job, tasks: Tasks) -> Effects:
        task = next((t for t in tasks.values() if t.id == seen.id), None)
        if task is None or task.status != TaskStatus.ready.value or task.queued_at != seen.queued_at:
            return Effects()
        error = (
            f"no {task.engine_id!r} engine has been running for {waited_s:.0f} s to take this task; "
            "start one (see README, 'Running it')"
        )
        return transitions.failed(job, tasks, task, error, retryable=False, attempt=task.attempt)

    return step


def _time_out(task_id: uuid.UUID, attempt: int, settings: Settings, now: datetime) -> JobStep:
    async def step(db: AsyncSession, job: Job, tasks: Tasks) -> Effects:
        task = next((t for t in tasks.values() if t.id == task_id), None)
        if task is None or task.attempt != attempt:
            return Effects()
        timeout = transitions.timed_out(job, task, settings, now)
        if timeout is None:
            return Effects()
        log.warning("task_timed_out", job_id=str(job.id), task=task.name, attempt=attempt, timeout_s=timeout)
        return transitions.failed(job, tasks, task, f"timed out after {timeout:.0f} s", retryable=True, attempt=attempt)

    return step


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def main() -> None:
    configure("orchestrator")
    settings = get_settings()
    metrics_http.serve(settings.metrics_port)
    redis = connect(settings.redis_url)
    store = make_store(settings)
    orchestrator = Orchestrator(get_sessionmaker(), redis, settings, store=store)
    deliverer = WebhookDeliverer(get_sessionmaker(), store, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.gather(orchestrator.run(stop), deliverer.run(stop), orchestrator.refresh_metrics(stop))
    finally:
        await deliverer.aclose()
        await redis.aclose()
        await get_engine().dispose()
