"""The orchestrator against real PostgreSQL and Redis; the tests play the engines.

The orchestrator runs in-process as an asyncio task (one test starts it as
`python -m orchestrator`). Engine streams may hold other jobs' messages, so every read
filters on the job id.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from structlog.testing import capture_logs
from support import free_port, sample, scrape, until

from orchestrator.service import Orchestrator
from shared.contracts import Event, TaskMessage, TranscribeConfig
from shared.db import Job, Task, Tenant, async_url
from shared.engine_heartbeat import Heartbeat
from shared.keys import (
    DLQ_STREAM,
    ENGINE_GROUP,
    EVENTS_STREAM,
    ORCHESTRATOR_GROUP,
    engine_stream,
    job_cancelled,
    job_done_channel,
)
from shared.outages import Dependency, unavailable
from shared.settings import Settings
from shared.streams import Liveness, connect, ensure_group, publish, read_group

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(async_url(database_url))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture(scope="module")
async def tenant_id(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async with sessionmaker() as db, db.begin():
        tenant = Tenant(name=f"orchestrator-test-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
    return tenant.id


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, task_max_retries=2, reconcile_interval_s=3600)


@pytest.fixture
async def orch(
    sessionmaker: async_sessionmaker[AsyncSession], r: aioredis.Redis, settings: Settings
) -> AsyncIterator[Orchestrator]:
    orchestrator = Orchestrator(sessionmaker, r, settings, consumer=f"test-{uuid.uuid4().hex[:6]}", block_ms=100)
    stop = asyncio.Event()
    running = asyncio.create_task(orchestrator.run(stop))
    yield orchestrator
    stop.set()
    await asyncio.wait_for(running, TIMEOUT)


# --- the test plays gateway and engines ---------------------------------------------


async def make_job(sm: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, **fields: Any) -> str:
    values: dict[str, Any] = dict(
        tenant_id=tenant_id,
        status="pending",
        model="tiny.en",
        language="en",
        speaker_detection="none",
        parameters={},
        audio_key="uploads/test.wav",
        audio_bytes=64_000,
        audio_duration=2.0,
        audio_channels=1,
        audio_sample_rate=16_000,
    )
    values.update(fields)
    async with sm() as db, db.begin():
        job = Job(**values)
        db.add(job)
    return str(job.id)


async def emit(r: aioredis.Redis, type: str, job_id: str, **fields: Any) -> None:
    await publish(r, EVENTS_STREAM, Event(type=type, job_id=job_id, **fields).model_dump())


async def next_task(r: aioredis.Redis, engine_id: str, job_id: str) -> TaskMessage:
    stream = engine_stream(engine_id)
    await ensure_group(r, stream, ENGINE_GROUP)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        # Left pending, as a real engine leaves its task until it has published the outcome.
        for msg in await read_group(r, stream, ENGINE_GROUP, "test-engine", count=10, block_ms=100):
            if msg.data.get("job_id") == job_id:
                return TaskMessage.model_validate(msg.data)
    raise AssertionError(f"no {engine_id} task for job {job_id}")


async def messages_for(r: aioredis.Redis, engine_id: str, job_id: str) -> list[TaskMessage]:
    entries = await r.xrange(engine_stream(engine_id))
    tasks = [TaskMessage.model_validate_json(fields["data"]) for _id, fields in entries]
    return [t for t in tasks if t.job_id == job_id]


async def complete(r: aioredis.Redis, task: TaskMessage) -> str:
    output_key = f"{task.output_prefix}output.json"
    now = time.time()
    await emit(r, "task.started", task.job_id, task_id=task.task_id, attempt=task.attempt, started_at=now)
    await emit(
        r,
        "task.completed",
        task.job_id,
        task_id=task.task_id,
        attempt=task.attempt,
        output_key=output_key,
        started_at=now,
        finished_at=now + 0.5,
    )
    await acknowledge(r, task)
    return output_key


async def fail(r: aioredis.Redis, task: TaskMessage, error: str, retryable: bool = True) -> None:
    await emit(r, "task.failed", task.job_id, task_id=task.task_id, attempt=task.attempt, error=error, retryable=retryable)
    await acknowledge(r, task)


async def acknowledge(r: aioredis.Redis, task: TaskMessage) -> None:
    """What an engine does once it has published the outcome."""
    stream = engine_stream(task.engine_id)
    for msg_id, fields in await r.xrange(stream):
        if TaskMessage.model_validate_json(fields["data"]).task_id == task.task_id:
            await r.xack(stream, ENGINE_GROUP, msg_id)


async def load(sm: async_sessionmaker[AsyncSession], job_id: str) -> tuple[Job, dict[str, Task]]:
    async with sm() as db:
        job = await db.get(Job, uuid.UUID(job_id))
        tasks = {t.name: t for t in await db.scalars(select(Task).where(Task.job_id == job.id))}
    return job, tasks


async def wait_for(sm: async_sessionmaker[AsyncSession], job_id: str, check: Any) -> tuple[Job, dict[str, Task]]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        job, tasks = await load(sm, job_id)
        if check(job, tasks):
            return job, tasks
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: job {job.status}, tasks {[(t.name, t.status) for t in tasks.values()]}")
        await asyncio.sleep(0.05)


class Waiter:
    """A synchronous API request waiting for its job: subscribed before anything happens."""

    def __init__(self, r: aioredis.Redis, job_id: str) -> None:
        self.pubsub = r.pubsub()
        self.channel = job_done_channel(job_id)

    async def __aenter__(self) -> Waiter:
        await self.pubsub.subscribe(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.unsubscribe(self.channel)
        await self.pubsub.aclose()

    async def done(self) -> dict[str, str]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if msg is not None:
                return json.loads(msg["data"])
        raise AssertionError("no job-done notification")


# --- tests --------------------------------------------------------------------------


async def test_job_runs_to_completion(orch: Orchestrator, r: aioredis.Redis, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    async with Waiter(r, job_id) as waiter:
        await emit(r, "job.created", job_id)

        prepare = await next_task(r, "prepare", job_id)
        assert prepare.name == "prepare" and prepare.stage == "prepare" and prepare.attempt == 0
        assert prepare.inputs == {}
        assert prepare.audio_key == "uploads/test.wav"
        assert prepare.output_prefix == f"jobs/{job_id}/tasks/prepare/"
        prepare_out = await complete(r, prepare)

        transcribe = await next_task(r, "faster-whisper", job_id)
        assert transcribe.inputs == {"prepare": prepare_out}
        assert transcribe.config == TranscribeConfig(model="tiny.en", language="en")
        transcribe_out = await complete(r, transcribe)

        merge = await next_task(r, "merge", job_id)
        assert merge.inputs == {"prepare": prepare_out, "transcribe": transcribe_out}
        merge_out = await complete(r, merge)

        assert await waiter.done() == {"job_id": job_id, "status": "completed"}

    job, tasks = await load(sessionmaker, job_id)
    assert job.status == "completed"
    assert job.transcript_key == merge_out
    assert job.started_at is not None and job.completed_at is not None and job.error is None
    for task in tasks.values():
        assert task.status == "completed"
        assert task.output_key == f"jobs/{job_id}/tasks/{task.name}/output.json"
        assert task.queued_at and task.started_at and task.completed_at
        assert task.stream_message_id is not None
        assert task.completed_at - task.started_at == timedelta(seconds=0.5)


async def test_per_channel_merges_after_every_channel(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id, speaker_detection="per_channel", audio_channels=2)
    await emit(r, "job.created", job_id)
    await complete(r, await next_task(r, "prepare", job_id))
    ch = [await next_task(r, "faster-whisper", job_id) for _ in range(2)]
    assert sorted(t.config.channel for t in ch if isinstance(t.config, TranscribeConfig)) == [0, 1]

    await complete(r, ch[0])
    _job, tasks = await wait_for(sessionmaker, job_id, lambda j, t: t[ch[0].name].status == "completed")
    assert tasks["merge"].status == "pending"

    await complete(r, ch[1])
    merge = await next_task(r, "merge", job_id)
    assert set(merge.inputs) == {"prepare", "transcribe_ch0", "transcribe_ch1"}
    await complete(r, merge)
    await wait_for(sessionmaker, job_id, lambda j, t: j.status == "completed")


async def test_per_channel_on_mono_fails_the_job(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id, speaker_detection="per_channel", audio_channels=1)
    async with Waiter(r, job_id) as waiter:
        await emit(r, "job.created", job_id)
        assert (await waiter.done())["status"] == "failed"
    job, tasks = await load(sessionmaker, job_id)
    assert "at least two channels" in job.error and tasks == {}


async def test_retry_then_success(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    first = await next_task(r, "prepare", job_id)
    await fail(r, first, "disk full")

    second = await next_task(r, "prepare", job_id)
    assert second.task_id == first.task_id and second.attempt == 1
    # A late failure from the superseded attempt changes nothing.
    await fail(r, first, "late echo")
    await complete(r, second)
    await next_task(r, "faster-whisper", job_id)

    _job, tasks = await load(sessionmaker, job_id)
    assert tasks["prepare"].status == "completed" and tasks["prepare"].attempt == 1


async def test_retries_exhausted_fail_the_job(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    async with Waiter(r, job_id) as waiter:
        await emit(r, "job.created", job_id)
        for attempt in range(3):  # the first try and task_max_retries=2 retries
            task = await next_task(r, "prepare", job_id)
            assert task.attempt == attempt
            await fail(r, task, f"decoder crashed #{attempt}")
        assert await waiter.done() == {"job_id": job_id, "status": "failed"}

    job, tasks = await load(sessionmaker, job_id)
    assert job.status == "failed"
    assert job.error == "prepare (prepare) failed: decoder crashed #2"
    assert tasks["prepare"].status == "failed"
    assert tasks["transcribe"].status == "skipped" and tasks["merge"].status == "skipped"


async def test_non_retryable_failure_fails_at_once(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    await complete(r, await next_task(r, "prepare", job_id))
    await fail(r, await next_task(r, "faster-whisper", job_id), "unsupported language", retryable=False)
    job, tasks = await wait_for(sessionmaker, job_id, lambda j, t: j.status == "failed")
    assert job.error == "transcribe (faster-whisper) failed: unsupported language"
    assert tasks["transcribe"].attempt == 0 and tasks["merge"].status == "skipped"


async def test_cancellation(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    prepare = await next_task(r, "prepare", job_id)

    async with Waiter(r, job_id) as waiter:
        # What the gateway does: status first, then the flag engines check, then the event.
        async with sessionmaker() as db, db.begin():
            await db.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(status="cancelled"))
        await r.set(job_cancelled(job_id), "1", ex=60)
        await emit(r, "job.cancelled", job_id)
        assert await waiter.done() == {"job_id": job_id, "status": "cancelled"}

    _job, tasks = await load(sessionmaker, job_id)
    assert {t.status for t in tasks.values()} == {"skipped"}

    # The engine finishes anyway: recorded on the task, but the job does not advance.
    await complete(r, prepare)
    job, tasks = await wait_for(sessionmaker, job_id, lambda j, t: t["prepare"].status == "completed")
    assert job.status == "cancelled" and job.transcript_key is None
    assert tasks["transcribe"].status == "skipped"
    assert await messages_for(r, "faster-whisper", job_id) == []


async def test_duplicate_completion_is_ignored(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    prepare = await next_task(r, "prepare", job_id)
    await complete(r, prepare)
    transcribe = await next_task(r, "faster-whisper", job_id)

    await complete(r, prepare)  # redelivered
    await emit(r, "task.started", job_id, task_id=transcribe.task_id, attempt=0, started_at=time.time())
    # One consumer handles events in order: once transcribe runs, the duplicate was handled.
    _job, tasks = await wait_for(sessionmaker, job_id, lambda j, t: t["transcribe"].status == "running")
    assert tasks["prepare"].status == "completed" and tasks["prepare"].attempt == 0
    assert len(await messages_for(r, "faster-whisper", job_id)) == 1


async def test_bad_events_go_to_the_dlq(orch, r, sessionmaker, tenant_id) -> None:
    dlq_before = await r.xlen(DLQ_STREAM)
    await r.xadd(EVENTS_STREAM, {"data": "not json"})
    await publish(r, EVENTS_STREAM, {"type": "job.exploded", "job_id": "x"})
    await publish(r, EVENTS_STREAM, {"type": "job.created", "job_id": "not-a-uuid"})

    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    await next_task(r, "prepare", job_id)  # the loop carried on

    entries = await r.xrange(DLQ_STREAM)
    assert len(entries) == dlq_before + 3
    dead = [json.loads(fields["data"]) for _id, fields in entries[-3:]]
    assert all(d["error"] and d["stream_id"] for d in dead)
    assert "badly formed hexadecimal UUID string" in dead[2]["error"]
    deadline = time.monotonic() + TIMEOUT
    while (await r.xpending(EVENTS_STREAM, ORCHESTRATOR_GROUP))["pending"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the last event is acked just after its task message goes out
    assert (await r.xpending(EVENTS_STREAM, ORCHESTRATOR_GROUP))["pending"] == 0


async def test_reconciler_republishes_lost_task_messages(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    lost = await next_task(r, "prepare", job_id)
    await wait_for(sessionmaker, job_id, lambda j, t: t["prepare"].stream_message_id is not None)

    await orch.reconcile()  # the message is still in the stream: nothing to do
    assert len(await messages_for(r, "prepare", job_id)) == 1

    await r.delete(engine_stream("prepare"))  # Redis lost it
    await orch.reconcile()
    again = await next_task(r, "prepare", job_id)
    assert again.task_id == lost.task_id and again.attempt == 0
    await complete(r, again)
    await next_task(r, "faster-whisper", job_id)


async def test_reconciler_requeues_a_finished_task_whose_outcome_was_lost(orch, r, sessionmaker, tenant_id) -> None:
    """The engine finished and acknowledged the task, but its task.started/completed never
    reached the job (a loaded CI run saw them dead-lettered): the task is queued again."""
    job_id = await make_job(sessionmaker, tenant_id)
    await emit(r, "job.created", job_id)
    first = await next_task(r, "prepare", job_id)
    _job, tasks = await wait_for(sessionmaker, job_id, lambda j, t: t["prepare"].stream_message_id is not None)

    await orch.reconcile()  # delivered and not acknowledged: in progress, nothing to do
    assert len(await messages_for(r, "prepare", job_id)) == 1

    await r.xack(engine_stream("prepare"), ENGINE_GROUP, tasks["prepare"].stream_message_id)  # no event
    await orch.reconcile()
    again = await next_task(r, "prepare", job_id)
    assert again.task_id == first.task_id and len(await messages_for(r, "prepare", job_id)) == 2
    await complete(r, again)
    await next_task(r, "faster-whisper", job_id)


async def test_reconciler_expands_job_whose_event_was_lost(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id, created_at=datetime.now(UTC) - timedelta(minutes=1))
    await orch.reconcile()
    await next_task(r, "prepare", job_id)
    job, _tasks = await load(sessionmaker, job_id)
    assert job.status == "running"


async def test_dead_orchestrators_event_is_claimed_not_reported_lost(r, sessionmaker, settings, tenant_id) -> None:
    await ensure_group(r, EVENTS_STREAM, ORCHESTRATOR_GROUP)
    job_id = await make_job(sessionmaker, tenant_id, created_at=datetime.now(UTC) - timedelta(minutes=1))
    await emit(r, "job.created", job_id)
    # Another orchestrator read the event, then was SIGKILLed: its liveness key is not refreshed.
    await Liveness(r, ORCHESTRATOR_GROUP, "killed-orchestrator", ttl_s=1.0).beat()
    held = await read_group(r, EVENTS_STREAM, ORCHESTRATOR_GROUP, "killed-orchestrator", count=1000, block_ms=100)
    assert job_id in [m.data.get("job_id") for m in held]

    survivor = Orchestrator(sessionmaker, r, settings, consumer="survivor", block_ms=100)
    with capture_logs() as logs:
        await survivor.reconcile()  # the job waits on its event: late, not lost
    events = [(e["event"], e.get("job_id")) for e in logs]
    assert ("job_created_not_handled_yet", job_id) in events
    assert not any(name == "job_created_lost_expanding" for name, _ in events)
    assert (await load(sessionmaker, job_id))[0].status == "pending"

    stop = asyncio.Event()
    began = time.monotonic()
    with capture_logs() as logs:
        running = asyncio.create_task(survivor.run(stop))
        await next_task(r, "prepare", job_id)
        waited = time.monotonic() - began
        stop.set()
        await asyncio.wait_for(running, TIMEOUT)
    print(f"\nthe dead orchestrator's job.created was handled {waited:.1f} s after a survivor started")
    claimed = [e for e in logs if e["event"] == "claimed_from_dead_consumer"]
    assert claimed and claimed[0]["dead_consumer"] == "killed-orchestrator"
    assert (await load(sessionmaker, job_id))[0].status == "running"


async def test_reconciler_fails_task_that_no_engine_serves(orch, r, sessionmaker, tenant_id) -> None:
    # A catalogued engine that is not deployed here: its task would wait forever.
    job_id = await make_job(sessionmaker, tenant_id, parameters={"engines": {"transcribe": "whisperx-full"}})
    await emit(r, "job.created", job_id)
    await complete(r, await next_task(r, "prepare", job_id))
    await wait_for(sessionmaker, job_id, lambda j, t: t["whisperx"].status == "ready")

    await orch.reconcile()  # queued moments ago: still within the patience window
    assert (await load(sessionmaker, job_id))[0].status == "running"

    async with sessionmaker() as db, db.begin():
        old = datetime.now(UTC) - timedelta(seconds=orch.settings.engine_unavailable_after_s + 1)
        await db.execute(update(Task).where(Task.job_id == uuid.UUID(job_id), Task.name == "whisperx").values(queued_at=old))

    # An instance that heartbeats is alive, busy or idle, whatever the stream's deliveries say.
    instance = Heartbeat(r, "whisperx-full", "whisperx-test-instance", interval_s=1, ttl_s=30)
    await instance.beat()
    await orch.reconcile()
    assert (await load(sessionmaker, job_id))[0].status == "running"
    await instance.remove()

    await orch.reconcile()
    job, tasks = await load(sessionmaker, job_id)
    assert job.status == "failed" and "no 'whisperx-full' engine has been running" in job.error
    assert tasks["whisperx"].status == "failed" and tasks["merge"].status == "skipped"


async def test_reconciler_interrupts_sessions_whose_gateway_died(orch, r, sessionmaker, tenant_id) -> None:
    from shared.db import RealtimeSession
    from shared.keys import realtime_session as session_key

    long_ago = datetime.now(UTC) - timedelta(seconds=orch.settings.realtime_lease_ttl_s + 5)
    async with sessionmaker() as db, db.begin():
        orphan = RealtimeSession(
            tenant_id=tenant_id, protocol="native", model="tiny.en", parameters={}, retain_audio=False, started_at=long_ago
        )
        alive = RealtimeSession(
            tenant_id=tenant_id, protocol="native", model="tiny.en", parameters={}, retain_audio=False, started_at=long_ago
        )
        db.add_all([orphan, alive])
    await r.set(session_key(str(alive.id)), "1", px=60_000)  # its gateway still renews the lease

    await orch.reconcile()
    async with sessionmaker() as db:
        orphan, alive = await db.get(RealtimeSession, orphan.id), await db.get(RealtimeSession, alive.id)
    assert orphan.status == "interrupted" and orphan.ended_at is not None and "gateway" in orphan.error
    assert alive.status == "active"


async def test_reconciler_retries_stuck_running_task(orch, r, sessionmaker, tenant_id) -> None:
    job_id = await make_job(sessionmaker, tenant_id, audio_duration=10.0)  # timeout 60 + 3 x 10 s
    await emit(r, "job.created", job_id)
    stuck = await next_task(r, "prepare", job_id)
    await emit(r, "task.started", job_id, task_id=stuck.task_id, attempt=0, started_at=time.time() - 80)
    await wait_for(sessionmaker, job_id, lambda j, t: t["prepare"].status == "running")

    await orch.reconcile()  # 80 s < 90 s: still within its time
    _job, tasks = await load(sessionmaker, job_id)
    assert tasks["prepare"].status == "running"

    async with sessionmaker() as db, db.begin():
        old = datetime.now(UTC) - timedelta(seconds=91)
        await db.execute(update(Task).where(Task.id == uuid.UUID(stuck.task_id)).values(started_at=old))
    await orch.reconcile()
    retry = await next_task(r, "prepare", job_id)
    assert retry.attempt == 1
    _job, tasks = await load(sessionmaker, job_id)
    assert tasks["prepare"].error == "timed out after 90 s"


@pytest.fixture(scope="module")
def starting_postgres() -> Iterator[str]:
    """A real PostgreSQL that answers every connection "the database system is not accepting
    connections" (SQLSTATE 57P03, as while it replays its WAL after a crash): a standby with
    hot standby off. Yields its URL."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and root")
    bin_dir, port = found[-1].parent, free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="dlst-pg-standby-"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres"], stdout=subprocess.DEVNULL, check=True
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"hot_standby = off\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n")
    subprocess.run([*as_postgres, "touch", str(data / "standby.signal")], check=True)
    server = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D", str(data)], stderr=subprocess.DEVNULL)
    try:
        # pg_isready: 1 = up but rejecting connections, the state wanted here.
        deadline = time.monotonic() + 60
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 1:
            assert server.poll() is None and time.monotonic() < deadline, "the standby did not come up"
            time.sleep(0.2)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("outage", ["refused", "starting up"])
async def test_infrastructure_errors_leave_the_event_unacked(r, settings: Settings, outage: str, request) -> None:
    """A database outage is not the event's fault: no DLQ; it is retried once claimed again.
    (A PostgreSQL replaying its WAL after a crash answered "the database system is starting up",
    which dead-lettered the events of a loaded `dalston up` test run and left its jobs running.)"""
    url = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
        if outage == "refused"
        else request.getfixturevalue("starting_postgres")
    )
    broken = create_async_engine(url)
    orchestrator = Orchestrator(async_sessionmaker(broken), r, settings, consumer="test-broken-db", block_ms=100)
    await ensure_group(r, EVENTS_STREAM, ORCHESTRATOR_GROUP)
    dlq_before = await r.xlen(DLQ_STREAM)
    await emit(r, "job.created", str(uuid.uuid4()))
    with pytest.raises(Exception) as raised:
        await orchestrator.poll()
    assert unavailable(raised.value) is Dependency.DATABASE, raised.value
    assert await r.xlen(DLQ_STREAM) == dlq_before
    held = await r.xpending_range(EVENTS_STREAM, ORCHESTRATOR_GROUP, min="-", max="+", count=10, consumername="test-broken-db")
    assert len(held) == 1
    await r.xack(EVENTS_STREAM, ORCHESTRATOR_GROUP, held[0]["message_id"])
    await broken.dispose()


async def test_service_entry_point(r, sessionmaker, tenant_id, database_url: str, redis_url: str) -> None:
    env = {**os.environ, "DALSTON_DATABASE_URL": database_url, "DALSTON_REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator"], cwd=ROOT, env=env)
    try:
        job_id = await make_job(sessionmaker, tenant_id)
        await emit(r, "job.created", job_id)
        await next_task(r, "prepare", job_id)
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(proc.wait, TIMEOUT)
    assert returncode == 0


async def test_service_metrics(r, sessionmaker, tenant_id, database_url: str, redis_url: str) -> None:
    """`python -m orchestrator` with a metrics port: retries, finished jobs, events taken from
    a dead peer and the engine streams' backlog show on its /metrics."""
    port = free_port()
    env = {
        **os.environ,
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_METRICS_PORT": str(port),
        "DALSTON_METRICS_REFRESH_INTERVAL_S": "0.2",
    }
    # A job.created held by an orchestrator that died (no liveness key): the process claims it.
    job_id = await make_job(sessionmaker, tenant_id)
    await ensure_group(r, EVENTS_STREAM, ORCHESTRATOR_GROUP)
    await emit(r, "job.created", job_id)
    assert len(await read_group(r, EVENTS_STREAM, ORCHESTRATOR_GROUP, "orchestrator-dead-1", count=10, block_ms=100)) == 1
    await ensure_group(r, engine_stream("prepare"), ENGINE_GROUP)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator"], cwd=ROOT, env=env)
    try:
        await fail(r, await next_task(r, "prepare", job_id), "engine crashed")  # retried
        await fail(r, await next_task(r, "prepare", job_id), "bad audio", retryable=False)  # fails the job
        # Other tests leave tasks in progress (taken, never finished), and next_task may take some
        # of theirs on its way to this job's: what is pending once this test has read its last.
        pending = (await r.xpending(engine_stream("prepare"), ENGINE_GROUP))["pending"]
        other = await make_job(sessionmaker, tenant_id)
        await emit(r, "job.created", other)  # its prepare task stays queued: no engine reads it here

        def finished() -> bool:
            try:
                now = scrape(f"http://127.0.0.1:{port}/metrics")
            except httpx.HTTPError:  # not listening yet
                return False
            # Other tests' jobs may have left prepare tasks unread too; a refresh may predate the last read.
            lag = sample(now, "dalston_stream_lag", engine="prepare")
            return (lag or 0) >= 1 and sample(now, "dalston_stream_pending", engine="prepare") == pending

        await until(finished, "the queued prepare task on the orchestrator's metrics")
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(proc.wait, TIMEOUT)
    assert returncode == 0
    assert sample(samples, "dalston_orchestrator_events_reclaimed_total", reason="dead") == 1.0
    assert sample(samples, "dalston_task_retries_total", engine="prepare") == 1.0
    assert sample(samples, "dalston_jobs_finished_total", outcome="failed") == 1.0
    assert sample(samples, "dalston_stream_pending", engine="prepare") == pending
    assert sample(samples, "dalston_stream_length", engine="prepare") is not None
