"""Engine heartbeats (shared/engine_heartbeat.py) against real Redis: the helper's TTL and
removal, and a real runner process that records itself, its task outcomes, removes itself
on SIGTERM and vanishes by TTL after SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis
from test_engine_runner import CLAIM_IDLE_MS, FIXTURES, ROOT, data_dir, enqueue, events_for, make_task, r, start_runner, store

from shared import engine_heartbeat, keys
from shared.engine_heartbeat import EngineInstance, Heartbeat
from shared.storage import FileStore

__all__ = ["data_dir", "r", "start_runner", "store"]  # fixtures, shared with the runner's tests


async def wait_for(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(what)


async def only_instance(r: aioredis.Redis, engine_id: str = "prepare") -> EngineInstance | None:
    found = await engine_heartbeat.instances(r, engine_id)
    assert len(found) <= 1, found
    return found[0] if found else None


def test_timing_follows_the_claim_timeout() -> None:
    assert engine_heartbeat.timing(1500) == (0.5, 1.5)  # a killed engine vanishes before its work is reclaimed
    interval, ttl = engine_heartbeat.timing(60_000)
    assert ttl == 15.0 and interval == 5.0  # but never slower than 5 s a beat


async def test_a_heartbeat_lives_by_its_ttl_and_is_removed(r: aioredis.Redis) -> None:
    beat = Heartbeat(r, "merge", "merge-test-1", interval_s=0.1, ttl_s=30)
    await beat.beat()
    await beat.task_started("task-7")
    beat.count(failed=False)
    beat.count(failed=True)
    await beat.task_finished()
    [seen] = await engine_heartbeat.instances(r, "merge")
    assert (seen.instance_id, seen.pid, seen.current_task_id) == ("merge-test-1", os.getpid(), None)
    assert (seen.tasks_done, seen.tasks_failed) == (1, 1)
    assert 0 <= seen.heartbeat_age_s <= 30
    await beat.task_started("task-8")
    assert (await engine_heartbeat.instances(r, "merge"))[0].current_task_id == "task-8"

    await beat.remove()
    assert await engine_heartbeat.instances(r, "merge") == []
    assert await r.scard(keys.engine_instances("merge")) == 0

    # Not renewed: gone when the TTL passes, and the index forgets it on the next read.
    short = Heartbeat(r, "merge", "merge-test-2", interval_s=0.1, ttl_s=0.3)
    await short.beat()
    assert await r.sismember(keys.engine_instances("merge"), "merge-test-2")
    await wait_for(lambda: _gone(r, "merge"), "the unrenewed heartbeat expired")
    assert await r.scard(keys.engine_instances("merge")) == 0


async def _gone(r: aioredis.Redis, engine_id: str) -> bool:
    return await engine_heartbeat.instances(r, engine_id) == []


async def test_a_runner_records_itself_and_removes_itself_on_sigterm(
    r: aioredis.Redis, store: FileStore, start_runner: Callable[..., subprocess.Popen]
) -> None:
    proc = start_runner()

    async def registered() -> bool:
        found = await only_instance(r)
        return found is not None and found.pid == proc.pid

    await wait_for(registered, "the runner heartbeats while idle on an empty stream")
    idle = await only_instance(r)
    assert idle is not None and idle.current_task_id is None and (idle.tasks_done, idle.tasks_failed) == (0, 0)
    assert idle.instance_id.startswith("prepare-") and idle.instance_id.endswith(f"-{proc.pid}")

    ok, bad = make_task(store, FIXTURES / "short_en.wav"), make_task(store, b"not audio at all" * 64)
    for task in (ok, bad):
        await enqueue(r, task)
    await events_for(r, ok, until="task.completed")
    await events_for(r, bad, until="task.failed")

    async def counted() -> bool:
        found = await only_instance(r)
        return found is not None and (found.tasks_done, found.tasks_failed) == (1, 1) and found.current_task_id is None

    await wait_for(counted, "the runner counts its outcomes and clears its current task")

    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 10) == 0
    assert await only_instance(r) is None  # removed on the way out, not left to expire
    assert await r.scard(keys.engine_instances("prepare")) == 0


async def test_a_killed_runner_disappears_when_its_ttl_passes(r: aioredis.Redis, redis_url: str, data_dir: Path) -> None:
    env = {
        **os.environ,
        "DALSTON_ENGINE": "prepare",
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(data_dir),
        "DALSTON_STORAGE_BACKEND": "fs",
        "DALSTON_ENGINE_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
        "DALSTON_ENGINE_BLOCK_MS": "200",
    }
    proc = subprocess.Popen([sys.executable, "-m", "engines.runner"], cwd=ROOT, env=env)
    try:

        async def registered() -> bool:
            found = await only_instance(r)
            return found is not None and found.pid == proc.pid

        await wait_for(registered, "the runner heartbeats")
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait, 10)
    await wait_for(lambda: _gone(r, "prepare"), "a SIGKILLed runner's heartbeat expires")
    assert await r.scard(keys.engine_instances("prepare")) == 0
