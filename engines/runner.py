"""Batch engine runner: `python -m engines.runner --engine faster-whisper` (or DALSTON_ENGINE).

One process = one engine, its model loaded once, one task at a time. Work comes from the
engine's stream through a consumer group; a message is acked only after its outcome
(task.completed / task.failed) is on the events stream, so a crash mid-task leaves the
message pending. Each process keeps a liveness key (shared.streams.Liveness, TTL
`consumer_liveness_ttl_s`); any instance, a restarted one included, claims the pending
tasks of a consumer whose key has expired within seconds of its death. As a fallback a
message idle for `engine_claim_idle_ms` is reclaimed too; while a task runs, a heartbeat
keeps resetting its idle time, so a slow live engine keeps its task.
On SIGTERM the runner takes no more work and finishes its current task if it can within
`engine_drain_timeout_s`; otherwise it hands the task back (shared.streams.release, then
drops its liveness key) so another instance claims it within about a second, and exits.
Separately, the process records itself (instance, current task, outcomes) for the console
in shared/engine_heartbeat.py, and removes that record when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from engines import metrics
from engines.base import Engine, EngineError, create
from shared import engine_heartbeat, keys, metrics_http, scratch, streams
from shared.contracts import Event, TaskMessage
from shared.logs import configure
from shared.settings import Settings, get_settings
from shared.storage import ObjectNotFound, ObjectStore, get_store

log = structlog.get_logger()
T = TypeVar("T")

# How often an engine looks for dead consumers' tasks (one cheap XINFO CONSUMERS).
DEAD_CHECK_INTERVAL_S = 1.0


def workdir_kind(engine_id: str) -> str:
    """The shared.scratch kind of this engine's per-task work directories."""
    return f"engine-{engine_id}"


def missing_input(task: TaskMessage, key: str) -> str:
    """The task's error when object `key` it reads is not in storage."""
    if key == task.audio_key:
        return "the uploaded audio is missing from storage"
    stage = next((name for name, input_key in task.inputs.items() if input_key == key), None)
    if stage is not None:
        return f"the output of the {stage} stage is missing from storage ({key})"
    return f"an object this task reads is missing from storage ({key})"


class HandBack(Exception):
    """The process is stopping and its task would not finish within the drain timeout."""


def enqueued_at(msg: streams.Message) -> float | None:
    """When `msg` was added to its stream (Unix seconds): its id starts with XADD's clock."""
    millis, _, _ = msg.id.partition("-")
    return int(millis) / 1000 if millis.isdigit() else None


class Runner:
    def __init__(self, engine: Engine, r: aioredis.Redis, store: ObjectStore, settings: Settings) -> None:
        self.engine = engine
        self.r = r
        self.store = store
        self.settings = settings
        self.stream = keys.engine_stream(engine.engine_id)
        self.consumer = f"{engine.engine_id}-{socket.gethostname()}-{os.getpid()}"
        self.stopping = asyncio.Event()
        self.abandon = asyncio.Event()  # a second signal: hand the task back without draining
        self.liveness = streams.Liveness(r, keys.ENGINE_GROUP, self.consumer, settings.consumer_liveness_ttl_s)
        self._next_dead_check = 0.0
        self._own_pending = True  # a restart under the same name finds its held tasks first
        interval_s, ttl_s = engine_heartbeat.timing(settings.engine_claim_idle_ms)
        # The console's view of this process (shared/engine_heartbeat.py), not the stream's.
        self.presence = engine_heartbeat.Heartbeat(r, engine.engine_id, self.consumer, interval_s=interval_s, ttl_s=ttl_s)

    async def run(self) -> None:
        await streams.ensure_group(self.r, self.stream, keys.ENGINE_GROUP)
        # Alive before the first read, so no peer ever takes this consumer for a dead one.
        await self.liveness.beat()
        alive = asyncio.create_task(self.liveness.run())
        presence = asyncio.create_task(self.presence.run())
        log.info("engine_ready", stream=self.stream, consumer=self.consumer)
        try:
            while not self.stopping.is_set():
                try:
                    for msg in await self._next():
                        await self.handle(msg)
                except RedisError as exc:
                    # Unacked work stays pending: read it again once Redis answers.
                    log.warning("redis_unavailable", error=str(exc))
                    self._own_pending = True
                    await asyncio.sleep(1)
        finally:
            for task in (presence, alive):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(RedisError):
                await self.presence.remove()
                await self.liveness.remove()
        log.info("engine_stopped")

    async def _next(self) -> list[streams.Message]:
        if self._own_pending:
            held = await streams.read_group(self.r, self.stream, keys.ENGINE_GROUP, self.consumer, own=True)
            self._own_pending = bool(held)
            if held:
                log.info("held_task_resumed", message_id=held[0].id)
                return held
        # Dead consumers' work first: a crash delays a task by about one liveness TTL.
        if time.monotonic() >= self._next_dead_check:
            self._next_dead_check = time.monotonic() + DEAD_CHECK_INTERVAL_S
            dead = await streams.claim_dead(self.r, self.stream, keys.ENGINE_GROUP, self.consumer, count=1)
            if dead:
                metrics.RECLAIMED.labels(self.engine.engine_id, "dead").inc(len(dead))
                return dead
        # Fallback: a message idle this long is stalled whatever its consumer's key says.
        claimed = await streams.claim_idle(
            self.r, self.stream, keys.ENGINE_GROUP, self.consumer, min_idle_ms=self.settings.engine_claim_idle_ms, count=1
        )
        if claimed:
            log.info("idle_message_claimed", message_id=claimed[0].id)
            metrics.RECLAIMED.labels(self.engine.engine_id, "idle").inc(len(claimed))
            return claimed
        return await streams.read_group(
            self.r, self.stream, keys.ENGINE_GROUP, self.consumer, block_ms=self.settings.engine_block_ms
        )

    async def handle(self, msg: streams.Message) -> None:
        try:
            task = TaskMessage.model_validate(msg.data)
        except ValidationError as exc:
            log.error("undecodable_task_message", message_id=msg.id, error=str(exc))
            data = msg.data if isinstance(msg.data, dict) else {}
            job_id, task_id = data.get("job_id"), data.get("task_id")
            if isinstance(job_id, str) and isinstance(task_id, str):
                await self._publish(
                    Event(
                        type="task.failed",
                        job_id=job_id,
                        task_id=task_id,
                        error=f"undecodable task message: {exc}",
                        retryable=False,
                    )
                )
            await self._ack(msg)
            return

        with structlog.contextvars.bound_contextvars(
            job_id=task.job_id, task_id=task.task_id, task=task.name, attempt=task.attempt
        ):
            deliveries = await streams.delivery_count(self.r, msg, keys.ENGINE_GROUP)
            if deliveries > self.settings.engine_max_deliveries:
                log.error("poison_message", deliveries=deliveries)
                await self._publish(
                    self._event(
                        task,
                        "task.failed",
                        error=f"task exceeded {self.settings.engine_max_deliveries} deliveries (poison message)",
                        retryable=False,
                    )
                )
                await self._ack(msg)
                return
            if await self.r.exists(keys.job_cancelled(task.job_id)):
                log.info("task_skipped_job_cancelled")
                metrics.TASKS.labels(self.engine.engine_id, "skipped").inc()
                await self._ack(msg)
                return
            await self._run_task(msg, task)

    async def _run_task(self, msg: streams.Message, task: TaskMessage) -> None:
        engine_id = self.engine.engine_id
        started_at = time.time()
        queued = enqueued_at(msg)
        if queued is not None:
            metrics.QUEUE_WAIT.labels(engine_id).observe(max(0.0, started_at - queued))
        await self._publish(self._event(task, "task.started", started_at=started_at))
        log.info("task_started")
        await self.presence.task_started(task.task_id)
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        metrics.BUSY.labels(engine_id).set(1)
        try:
            # The engine's thread may still write here after a hand-back: cleanup is best effort.
            prefix = scratch.prefix(workdir_kind(engine_id))
            with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as workdir:
                output_key = await self._process(task, Path(workdir))
        except HandBack:
            heartbeat.cancel()
            await self._hand_back(msg)
            return
        except EngineError as exc:
            log.warning("task_failed", error=exc.message, retryable=exc.retryable)
            event = self._event(task, "task.failed", error=exc.message, retryable=exc.retryable, started_at=started_at)
        except ObjectNotFound as exc:
            # Another attempt would find it missing too: fail now, saying what is gone.
            error = missing_input(task, str(exc.args[0]) if exc.args else "")
            log.warning("task_failed", error=error, retryable=False)
            event = self._event(task, "task.failed", error=error, retryable=False, started_at=started_at)
        except Exception as exc:
            log.exception("task_crashed")
            event = self._event(task, "task.failed", error=f"{type(exc).__name__}: {exc}", retryable=True, started_at=started_at)
        else:
            log.info("task_completed", output_key=output_key, seconds=round(time.time() - started_at, 3))
            event = self._event(task, "task.completed", output_key=output_key, started_at=started_at)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            metrics.BUSY.labels(engine_id).set(0)
        event.finished_at = time.time()
        metrics.TASK_SECONDS.labels(engine_id).observe(event.finished_at - started_at)
        if await self._discard_if_fenced(task):
            metrics.TASKS.labels(engine_id, "discarded").inc()
            await self._until_redis_answers(lambda: self._ack(msg))
            await self.presence.task_finished()
            return
        if not await self._until_redis_answers(lambda: streams.holds(self.r, msg, keys.ENGINE_GROUP, self.consumer)):
            # A peer took the task over while this process could not reach Redis (its liveness
            # key expired): the peer reports it; reporting it here too would complete it twice.
            log.warning("task_lost_to_peer", message_id=msg.id, outcome=event.type)
            metrics.TASKS.labels(engine_id, "lost").inc()
            await self.presence.task_finished()
            return
        try:
            # The work is done: keep its outcome through a Redis outage rather than redo it.
            await self._until_redis_answers(lambda: self._publish(event))
            await self._until_redis_answers(lambda: self._ack(msg))
        finally:
            await self.presence.task_finished()

    async def _process(self, task: TaskMessage, workdir: Path) -> str:
        """Run the engine on `task`; on a stop, wait for it up to the drain timeout, then
        raise HandBack (the engine's thread cannot be interrupted: the process exits)."""
        work = asyncio.ensure_future(asyncio.to_thread(self.engine.process, task, self.store, workdir))
        stop = asyncio.ensure_future(self.stopping.wait())
        abandon = asyncio.ensure_future(self.abandon.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                timeout_s = self.settings.engine_drain_timeout_s
                log.info("draining_current_task", timeout_s=timeout_s)
                await asyncio.wait({work, abandon}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():
                    raise HandBack
            return work.result()
        finally:
            stop.cancel()
            abandon.cancel()

    async def _hand_back(self, msg: streams.Message) -> None:
        """Give the running task to the other instances and exit now: its message becomes
        claimable at once (delivery count unchanged) and dropping the liveness key makes
        peers take it on their next dead-consumer check, not after a reclaim timeout."""
        try:
            await streams.release(self.r, msg, keys.ENGINE_GROUP, self.consumer)
            await self.liveness.remove()
            await self.presence.remove()
        except RedisError as exc:  # the liveness key still expires within its TTL
            log.warning("hand_back_incomplete", error=str(exc))
        metrics.HANDED_BACK.labels(self.engine.engine_id).inc()
        log.warning("task_handed_back", message_id=msg.id)
        sys.stderr.flush()
        # Not a normal exit: that would wait for the engine's thread to finish the task.
        os._exit(0)

    async def _discard_if_fenced(self, task: TaskMessage) -> bool:
        """The job was cancelled or deleted while the task ran: remove what it wrote (all
        that is left under a deleted job's prefix) instead of reporting it."""
        try:
            fence = await self.r.get(keys.job_cancelled(task.job_id))
        except RedisError:
            return False  # report as usual; the orchestrator ignores it for a finished job
        if fence is None:
            return False
        prefix = keys.job_prefix(task.job_id) if fence == "deleted" else task.output_prefix
        removed = await asyncio.to_thread(self.store.delete_prefix, prefix)
        log.info("task_output_discarded", job_fenced=fence, prefix=prefix, objects=removed)
        return True

    async def _until_redis_answers(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.5
        while True:
            try:
                return await call()
            except RedisError as exc:
                log.warning("redis_unavailable_retrying", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _heartbeat(self, msg: streams.Message) -> None:
        """Keep resetting the task's idle time while this process holds it. Once a peer has
        taken it over (this process was cut off from Redis past its liveness TTL) it stops:
        the engine's thread cannot be interrupted, so the task runs to its end and the
        `holds` check in `_run_task` drops its outcome; the peer's run is the one reported."""
        interval = self.settings.engine_claim_idle_ms / 3000
        me = asyncio.current_task()
        # Checked each round, not left to CancelledError alone: a cancellation that lands inside a
        # Redis command can come out of the client as a connection error (caught below), and a
        # heartbeat that outlives its task keeps a finished task "running" forever (seen in CI:
        # the engine idle, its entry touched every few seconds, the next jobs queued behind it).
        while me is None or not me.cancelling():
            await asyncio.sleep(interval)
            try:
                held = await streams.touch(self.r, msg, keys.ENGINE_GROUP, self.consumer)
            except RedisError as exc:
                if me is not None and me.cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("heartbeat_failed", error=str(exc))
                continue
            if not held:
                log.warning("task_taken_over_by_peer", message_id=msg.id)
                return

    def _event(self, task: TaskMessage, type_: str, **fields: Any) -> Event:
        return Event(type=type_, job_id=task.job_id, task_id=task.task_id, attempt=task.attempt, **fields)

    async def _publish(self, event: Event) -> None:
        await streams.publish(self.r, keys.EVENTS_STREAM, event.model_dump(mode="json"))
        if event.type in ("task.completed", "task.failed"):
            self.presence.count(failed=event.type == "task.failed")
            metrics.TASKS.labels(self.engine.engine_id, event.type.removeprefix("task.")).inc()

    async def _ack(self, msg: streams.Message) -> None:
        await streams.ack(self.r, msg, keys.ENGINE_GROUP)


async def serve(engine_id: str) -> None:
    settings = get_settings()
    metrics_http.serve(settings.metrics_port)
    # A live engine shows on /metrics from the start, still loading: "no live engine" alerts read it.
    metrics.BUSY.labels(engine_id).set(0)
    engine = create(engine_id)
    began = time.perf_counter()
    await asyncio.to_thread(engine.load)
    load_s = time.perf_counter() - began
    metrics.MODEL_LOAD_SECONDS.labels(engine_id).set(load_s)
    log.info("engine_loaded", seconds=round(load_s, 3))
    r = streams.connect(settings.redis_url)
    runner = Runner(engine, r, get_store(), settings)

    def on_signal(signum: int) -> None:
        if runner.abandon.is_set():
            log.warning("exiting_now", signal=signal.Signals(signum).name)
            os._exit(128 + signum)  # the loop is stuck (e.g. Redis down): its task's key expires
        if runner.stopping.is_set():
            # Second signal: hand the task back now rather than after the drain timeout.
            runner.abandon.set()
            log.warning("abandoning_current_task", signal=signal.Signals(signum).name)
            return
        runner.stopping.set()
        log.info("stopping_after_current_task", signal=signal.Signals(signum).name)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await runner.run()
    finally:
        await r.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engines.runner", description="Run one batch engine.")
    parser.add_argument("--engine", default=os.environ.get("DALSTON_ENGINE"), help="engine id (default: $DALSTON_ENGINE)")
    args = parser.parse_args(argv)
    if not args.engine:
        parser.error("--engine or DALSTON_ENGINE is required")
    configure(service=f"engine-{args.engine}")
    # A SIGKILLed predecessor's work directories (a decoded file can be gigabytes).
    removed, size = scratch.sweep(workdir_kind(args.engine))
    if removed:
        log.info("scratch_swept", entries=removed, bytes=size)
    asyncio.run(serve(args.engine))


if __name__ == "__main__":
    main()
