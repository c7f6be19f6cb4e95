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

from shared import keys, streams
from shared.contracts import Event, PrepareOutput, TaskMessage
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

    def start(engine: str = "prepare") -> subprocess.Popen:
        env = {
            **os.environ,
            "DALSTON_ENGINE": engine,
            "DALSTON_REDIS_URL": redis_url,
            "DALSTON_DATA_DIR": str(data_dir),
            "DALSTON_STORAGE_BACKEND": "fs",
            "DALSTON_ENGINE_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
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
        assert proc.wait(timeout=10) == 0


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
