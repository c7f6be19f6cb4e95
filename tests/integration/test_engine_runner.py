"""The engine runner against real Redis and a FileStore, as a separate process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from engines.base import create
from engines.runner import Runner
from shared import keys, streams
from shared.contracts import Event, PrepareOutput, TaskMessage
from shared.settings import Settings
from shared.storage import FileStore
from shared.transcript import Transcript

FIXTURES = Path(__file__).parent.parent / "fixtures"
ROOT = Path(__file__).parent.parent.parent
CLAIM_IDLE_MS = 1500


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> FileStore:
    return FileStore(data_dir / "storage")  # where the runner's settings put it


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = streams.connect(redis_url)
    await streams.ensure_group(client, keys.engine_stream("prepare"), keys.ENGINE_GROUP)
    yield client
    await client.aclose()


@pytest.fixture
def start_runner(redis_url: str, data_dir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def start(engine: str = "prepare", claim_idle_ms: int = CLAIM_IDLE_MS) -> subprocess.Popen:
        env = {
            **os.environ,
            "DALSTON_ENGINE": engine,
            "DALSTON_REDIS_URL": redis_url,
            "DALSTON_DATA_DIR": str(data_dir),
            "DALSTON_STORAGE_BACKEND": "fs",
            "DALSTON_ENGINE_CLAIM_IDLE_MS": str(claim_idle_ms),
            "DALSTON_ENGINE_BLOCK_MS": "200",
            "DALSTON_ENGINE_MAX_DELIVERIES": "3",
        }
        proc = subprocess.Popen([sys.executable, "-m", "engines.runner"], cwd=ROOT, env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def make_task(store: FileStore, audio: Path | bytes) -> TaskMessage:
    job_id = uuid.uuid4().hex
    audio_key = f"jobs/{job_id}/audio/original.wav"
    if isinstance(audio, Path):
        store.put_file(audio_key, audio)
    else:
        store.put_bytes(audio_key, audio)
    return TaskMessage(
        task_id=uuid.uuid4().hex,
        job_id=job_id,
        name="prepare",
        stage="prepare",
        engine_id="prepare",
        attempt=1,
        audio_key=audio_key,
        inputs={},
        output_prefix=f"jobs/{job_id}/tasks/prepare/",
    )


async def enqueue(r: aioredis.Redis, task: TaskMessage) -> None:
    await streams.publish(r, keys.engine_stream(task.engine_id), task.model_dump(mode="json"))


async def events_for(r: aioredis.Redis, task: TaskMessage, *, until: str | None, timeout: float = 20) -> list[Event]:
    """`task`'s events on the events stream: once one of type `until` arrives, or (None) all there now."""
    group, found = f"test-{uuid.uuid4().hex}", []
    await streams.ensure_group(r, keys.EVENTS_STREAM, group)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = await streams.read_group(r, keys.EVENTS_STREAM, group, "test", count=100, block_ms=200)
        found += [Event.model_validate(m.data) for m in batch if m.data.get("task_id") == task.task_id]
        if (until is None and not batch) or any(e.type == until for e in found):
            return found
    raise TimeoutError(f"no {until} for task {task.name}; saw {[e.type for e in found]}")


async def pending(r: aioredis.Redis) -> int:
    """Unacked messages, once the runner has had a moment to ack (it acks just after publishing)."""
    for _ in range(50):
        count = (await r.xpending(keys.engine_stream("prepare"), keys.ENGINE_GROUP))["pending"]
        if count == 0:
            break
        await asyncio.sleep(0.05)
    return count


async def test_completes_task(r, store, start_runner) -> None:
    start_runner()
    task = make_task(store, FIXTURES / "stereo_en.wav")
    await enqueue(r, task)

    events = await events_for(r, task, until="task.completed")
    assert [e.type for e in events] == ["task.started", "task.completed"]
    done = events[-1]
    assert (done.task_id, done.attempt, done.output_key) == (task.task_id, 1, f"{task.output_prefix}output.json")
    assert done.started_at <= done.finished_at
    prepared = PrepareOutput.model_validate_json(store.get_bytes(done.output_key))
    assert prepared.channels == 2 and all(store.exists(k) for k in [prepared.audio_key, *prepared.channel_keys])
    assert await pending(r) == 0


async def test_undecodable_audio_fails_without_retry(r, store, start_runner) -> None:
    start_runner()
    task = make_task(store, os.urandom(4096))
    await enqueue(r, task)

    failed = (await events_for(r, task, until="task.failed"))[-1]
    assert failed.retryable is False and "decode" in failed.error
    assert await pending(r) == 0


async def test_missing_upload_fails_at_once_saying_so(r, store, start_runner) -> None:
    start_runner()
    task = make_task(store, FIXTURES / "short_en.wav")
    store.delete_prefix(task.audio_key)  # gone from storage before the task runs
    await enqueue(r, task)

    failed = (await events_for(r, task, until="task.failed"))[-1]
    assert failed.retryable is False
    assert failed.error == "the uploaded audio is missing from storage"
    assert await pending(r) == 0


async def test_malformed_message_fails_without_retry(r, start_runner) -> None:
    start_runner()
    bad = {"job_id": uuid.uuid4().hex, "task_id": uuid.uuid4().hex, "engine_id": "prepare"}  # fields missing
    await streams.publish(r, keys.engine_stream("prepare"), bad)

    task = TaskMessage.model_construct(task_id=bad["task_id"], name="malformed")
    failed = (await events_for(r, task, until="task.failed"))[-1]
    assert failed.job_id == bad["job_id"] and failed.retryable is False and "undecodable" in failed.error
    assert await pending(r) == 0


async def test_cancelled_job_is_skipped(r, store, start_runner) -> None:
    cancelled, normal = make_task(store, FIXTURES / "short_en.wav"), make_task(store, FIXTURES / "short_en.wav")
    await r.set(keys.job_cancelled(cancelled.job_id), "1")
    await enqueue(r, cancelled)
    await enqueue(r, normal)
    start_runner()

    await events_for(r, normal, until="task.completed")  # handled after the cancelled one
    assert await events_for(r, cancelled, until=None) == []
    assert await pending(r) == 0


async def test_reclaims_work_of_a_dead_consumer(r, store, start_runner) -> None:
    task = make_task(store, FIXTURES / "short_en.wav")
    await enqueue(r, task)
    # A consumer takes the message and dies without acking it.
    taken = await streams.read_group(r, keys.engine_stream("prepare"), keys.ENGINE_GROUP, "dead-consumer", block_ms=100)
    assert [m.data["task_id"] for m in taken] == [task.task_id]
    start_runner()

    done = (await events_for(r, task, until="task.completed"))[-1]
    assert store.exists(done.output_key)
    assert await pending(r) == 0


async def test_poison_message_fails_after_max_deliveries(r, store, start_runner) -> None:
    task = make_task(store, FIXTURES / "short_en.wav")
    await enqueue(r, task)
    stream = keys.engine_stream("prepare")
    # Three consumers in turn take it and die (default ceiling: 3 deliveries).
    await streams.read_group(r, stream, keys.ENGINE_GROUP, "dead-1", block_ms=100)
    for consumer in ("dead-2", "dead-3"):
        assert await streams.claim_idle(r, stream, keys.ENGINE_GROUP, consumer, min_idle_ms=0)
    start_runner()

    events = await events_for(r, task, until="task.failed")
    assert [e.type for e in events] == ["task.failed"]
    assert events[0].retryable is False and events[0].error == "task exceeded 3 deliveries (poison message)"
    assert await pending(r) == 0


async def test_prepare_transcribe_merge_chain(r, store, start_runner) -> None:
    for engine in ("prepare", "faster-whisper", "merge"):
        start_runner(engine)
    prepare = make_task(store, FIXTURES / "short_en.wav")

    async def run(name: str, engine_id: str, inputs: dict[str, str]) -> str:
        task = TaskMessage.model_validate(
            {
                **prepare.model_dump(exclude={"config"}),
                "task_id": uuid.uuid4().hex,
                "name": name,
                "stage": name,
                "engine_id": engine_id,
                "inputs": inputs,
                "output_prefix": f"jobs/{prepare.job_id}/tasks/{name}/",
                "config": {"model": "tiny.en"},
            }
        )
        await enqueue(r, task)
        return (await events_for(r, task, until="task.completed"))[-1].output_key

    prepared = await run("prepare", "prepare", {})
    transcribed = await run("transcribe", "faster-whisper", {"prepare": prepared})
    transcript = Transcript.model_validate_json(
        store.get_bytes(await run("merge", "merge", {"prepare": prepared, "transcribe": transcribed}))
    )
    assert "short test" in transcript.text.lower()
    assert transcript.model == "tiny.en" and transcript.words


async def test_live_consumer_keeps_its_task(r, store, start_runner) -> None:
    """A consumer that is slow but alive (liveness key fresh, its task touched as the runner
    does) keeps its task: the other instance never takes it."""
    task = make_task(store, FIXTURES / "short_en.wav")
    await enqueue(r, task)
    stream = keys.engine_stream("prepare")
    taken = await streams.read_group(r, stream, keys.ENGINE_GROUP, "slow-consumer", block_ms=100)
    assert [m.data["task_id"] for m in taken] == [task.task_id]
    liveness = streams.Liveness(r, keys.ENGINE_GROUP, "slow-consumer", ttl_s=1.0)
    await liveness.beat()
    alive = asyncio.create_task(liveness.run())
    try:
        start_runner()
        for _ in range(12):  # 6 s: several liveness TTLs and idle-claim timeouts
            await streams.touch(r, taken[0], keys.ENGINE_GROUP, "slow-consumer")
            await asyncio.sleep(0.5)
        assert await events_for(r, task, until=None) == []
        owners = await r.xpending_range(stream, keys.ENGINE_GROUP, min="-", max="+", count=10)
        assert [o["consumer"] for o in owners] == ["slow-consumer"]
    finally:
        alive.cancel()

    # It dies (its key expires): the runner takes the task over.
    done = (await events_for(r, task, until="task.completed", timeout=30))[-1]
    assert store.exists(done.output_key)


async def test_touch_never_takes_a_task_back_from_a_peer(r) -> None:
    """An engine cut off from Redis past its liveness TTL has its task reclaimed by a peer;
    its heartbeat (`touch`) arriving late leaves the task, and its idle time, with the peer.
    A task it still holds is touched: its idle time restarts."""
    stream, group = f"touch-{uuid.uuid4().hex}", keys.ENGINE_GROUP
    await streams.ensure_group(r, stream, group)
    for n in (1, 2):
        await streams.publish(r, stream, {"n": n})
    lost, kept = await streams.read_group(r, stream, group, "engine-a", count=2, block_ms=100)

    async def owner_and_idle(msg: streams.Message) -> tuple[str, int]:
        [entry] = await r.xpending_range(stream, group, min=msg.id, max=msg.id, count=1)
        return entry["consumer"], int(entry["time_since_delivered"])

    # A peer reclaims the first task as the runner does, and works on it a minute (idle 60 s).
    [claimed] = await streams.claim_idle(r, stream, group, "engine-b", min_idle_ms=0, count=1)
    assert claimed.id == lost.id
    await r.xclaim(stream, group, "engine-b", 0, [lost.id], idle=60_000, justid=True)
    assert not await streams.touch(r, lost, group, "engine-a")
    owner, idle = await owner_and_idle(lost)
    assert owner == "engine-b" and idle >= 60_000  # neither taken back nor touched

    await r.xclaim(stream, group, "engine-a", 0, [kept.id], idle=60_000, justid=True)
    assert await streams.touch(r, kept, group, "engine-a")
    owner, idle = await owner_and_idle(kept)
    assert owner == "engine-a" and idle < 60_000

    # Acknowledged (by the peer that finished it): nothing to touch, nothing re-created.
    await streams.ack(r, lost, group)
    assert not await streams.touch(r, lost, group, "engine-b")
    assert (await r.xpending(stream, group))["pending"] == 1

    # Redis lost the group (restarted without its data): no peer can hold the task.
    assert not await streams.holds(r, lost, group, "engine-a") and await streams.holds(r, kept, group, "engine-a")
    await r.xgroup_destroy(stream, group)
    assert await streams.holds(r, kept, group, "engine-a")


async def _holder(r: aioredis.Redis, stream: str, procs: dict[int, subprocess.Popen]) -> subprocess.Popen:
    """The runner process that holds the stream's one pending message (consumer names end in the pid)."""
    for _ in range(100):
        owners = await r.xpending_range(stream, keys.ENGINE_GROUP, min="-", max="+", count=1)
        if owners:
            return procs[int(owners[0]["consumer"].rsplit("-", 1)[1])]
        await asyncio.sleep(0.05)
    raise TimeoutError("no runner took the task")


async def _kill_mid_task_and_time_resume(r, store, task: TaskMessage, procs: dict[int, subprocess.Popen], restart) -> float:
    await enqueue(r, task)
    await events_for(r, task, until="task.started", timeout=120)
    victim = await _holder(r, keys.engine_stream(task.engine_id), procs)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    procs.pop(victim.pid)
    if restart:
        fresh = restart()
        procs[fresh.pid] = fresh
    group = f"resume-{uuid.uuid4().hex}"
    await streams.ensure_group(r, keys.EVENTS_STREAM, group)
    await r.xgroup_setid(keys.EVENTS_STREAM, group, "$")  # only events after the kill
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch = await streams.read_group(r, keys.EVENTS_STREAM, group, "test", count=100, block_ms=100)
        if any(m.data.get("task_id") == task.task_id and m.data.get("type") == "task.started" for m in batch):
            return time.monotonic() - killed_at
    raise TimeoutError("the killed engine's task never resumed")


async def test_sigkilled_engine_task_resumes_within_seconds(r, store, start_runner) -> None:
    """SIGKILL mid-task: the task resumes on a survivor, or on a restarted instance, once the
    dead consumer's liveness key expires (5 s TTL). The idle-claim fallback is set to 10
    minutes, past the test's 2-minute wait, so a resume at all proves the liveness claim;
    the measured times are printed (about 5 s each; speed is not asserted)."""
    await streams.ensure_group(r, keys.engine_stream("faster-whisper"), keys.ENGINE_GROUP)
    start = lambda: start_runner("faster-whisper", claim_idle_ms=600_000)  # noqa: E731
    procs = {p.pid: p for p in (start(), start())}
    prepare = make_task(store, FIXTURES / "long_en.wav")

    def transcribe_task() -> TaskMessage:
        return TaskMessage.model_validate(
            {
                **prepare.model_dump(exclude={"config"}),
                "task_id": uuid.uuid4().hex,
                "name": "transcribe",
                "stage": "transcribe",
                "engine_id": "faster-whisper",
                "inputs": {"prepare": prepared},
                "output_prefix": f"jobs/{prepare.job_id}/tasks/transcribe-{uuid.uuid4().hex[:6]}/",
                "config": {"model": "tiny.en"},
            }
        )

    start_runner("prepare")
    await enqueue(r, prepare)
    prepared = (await events_for(r, prepare, until="task.completed", timeout=60))[-1].output_key

    first = transcribe_task()
    survivor_s = await _kill_mid_task_and_time_resume(r, store, first, procs, restart=None)
    await events_for(r, first, until="task.completed", timeout=180)
    second = transcribe_task()
    restarted_s = await _kill_mid_task_and_time_resume(r, store, second, procs, restart=start)
    await events_for(r, second, until="task.completed", timeout=180)
    print(
        f"\nSIGKILLed engine's task resumed after {survivor_s:.1f} s on a survivor, {restarted_s:.1f} s on a restarted instance"
    )


async def test_deleted_job_running_task_output_is_discarded(r, store, start_runner, data_dir) -> None:
    """Cancel + DELETE while a task runs: the gateway fences the job, then removes its
    prefix; what the task writes afterwards is removed too, and no completion is reported."""
    start_runner("prepare")
    start_runner("faster-whisper")
    prepare = make_task(store, FIXTURES / "long_en.wav")
    await enqueue(r, prepare)
    prepared = (await events_for(r, prepare, until="task.completed", timeout=60))[-1].output_key
    transcribe = TaskMessage.model_validate(
        {
            **prepare.model_dump(exclude={"config"}),
            "task_id": uuid.uuid4().hex,
            "name": "transcribe",
            "stage": "transcribe",
            "engine_id": "faster-whisper",
            "inputs": {"prepare": prepared},
            "output_prefix": f"jobs/{prepare.job_id}/tasks/transcribe/",
            "config": {"model": "tiny.en"},
        }
    )
    await enqueue(r, transcribe)
    await events_for(r, transcribe, until="task.started", timeout=120)
    await r.set(keys.job_cancelled(transcribe.job_id), "deleted")  # what DELETE does, in this order
    store.delete_prefix(keys.job_prefix(transcribe.job_id))

    stream = keys.engine_stream("faster-whisper")
    deadline = time.monotonic() + 120
    while (await r.xpending(stream, keys.ENGINE_GROUP))["pending"]:
        assert time.monotonic() < deadline, "the task never finished"
        await asyncio.sleep(0.2)
    assert [e.type for e in await events_for(r, transcribe, until=None)] == ["task.started"]
    assert not (data_dir / "storage" / "jobs" / transcribe.job_id).exists()


async def test_start_sweeps_a_killed_predecessors_workdirs(r, store, start_runner, tmp_path, monkeypatch) -> None:
    scratch_dir = tmp_path / "tmp"
    scratch_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch_dir))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    leftover = scratch_dir / f"dalston-engine-prepare-{gone.pid}-x1"  # a SIGKILLed runner's work directory
    leftover.mkdir()
    (leftover / "decoded.wav").write_bytes(bytes(1 << 20))
    live = scratch_dir / f"dalston-engine-prepare-{os.getpid()}-x2"  # a running process's: kept
    live.mkdir()

    start_runner()
    task = make_task(store, FIXTURES / "short_en.wav")
    await enqueue(r, task)
    await events_for(r, task, until="task.completed")  # the runner is up (it swept before serving)
    assert not leftover.exists() and live.exists()
    assert [p.name for p in scratch_dir.iterdir()] == [live.name]  # its own task's directory is gone too


async def test_heartbeat_ends_when_its_cancellation_comes_out_as_a_redis_error(r, monkeypatch, data_dir) -> None:
    """Seen in CI under load: the cancellation of a finished task's heartbeat landed inside a
    Redis command and came out of the client as a connection error; the heartbeat went on
    touching, so the finished task stayed "running" and the next jobs queued behind it."""
    settings = Settings(data_dir=data_dir, engine_claim_idle_ms=300)
    runner = Runner(create("prepare"), r, FileStore(data_dir / "storage"), settings)
    stream = keys.engine_stream("prepare")
    await streams.publish(r, stream, {"n": 1})
    [msg] = await streams.read_group(r, stream, keys.ENGINE_GROUP, runner.consumer, block_ms=100)
    touching, swallowed = asyncio.Event(), []

    async def touch_swallowing_cancel(*_args: object) -> bool:
        touching.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(True)
            raise RedisConnectionError("Connection closed by server.") from None
        return True

    monkeypatch.setattr(streams, "touch", touch_swallowing_cancel)
    heartbeat = asyncio.create_task(runner._heartbeat(msg))
    await asyncio.wait_for(touching.wait(), 30)
    heartbeat.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(heartbeat, 30)  # before the fix: TimeoutError, still touching
