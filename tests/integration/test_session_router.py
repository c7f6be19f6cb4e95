"""The worker registry and allocation scripts against the real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from shared.keys import REALTIME_WORKERS as WORKERS
from shared.keys import realtime_leases as leases_key
from shared.keys import realtime_session as session_key
from shared.realtime.registry import Allocation, NoCapacity, Registry


@pytest.fixture
async def registry(redis_url: str):
    client = aioredis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield Registry(client, lease_ms=30_000)
    await client.flushdb()
    await client.aclose()


async def beat(
    registry: Registry, worker_id: str, *, capacity: int = 2, models=("tiny.en",), status: str = "ready", ttl_ms: int = 10_000
) -> None:
    await registry.heartbeat(
        worker_id, url=f"ws://{worker_id}", capacity=capacity, active=0, models=list(models), status=status, ttl_ms=ttl_ms
    )


def sid() -> str:
    return uuid.uuid4().hex


async def test_allocates_least_loaded_worker_serving_the_model(registry: Registry) -> None:
    await beat(registry, "a", capacity=4)
    await beat(registry, "b", capacity=2)
    await beat(registry, "c", capacity=8, models=("parakeet-tdt-0.6b-v2",))
    picks = [await registry.allocate("tiny.en", sid()) for _ in range(6)]
    assert all(isinstance(x, Allocation) for x in picks)
    # Load is a fraction of capacity: a gets 4, b gets 2, c (other model) none.
    assert sorted(x.worker_id for x in picks) == ["a", "a", "a", "a", "b", "b"]
    full = await registry.allocate("tiny.en", sid())
    assert isinstance(full, NoCapacity) and (full.workers, full.capacity, full.active) == (2, 6, 6)
    assert "busy" in full.message
    other = await registry.allocate("parakeet-tdt-0.6b-v2", sid())
    assert isinstance(other, Allocation) and other.worker_id == "c"
    missing = await registry.allocate("base", sid())
    assert isinstance(missing, NoCapacity) and missing.workers == 0 and "no realtime worker" in missing.message


async def test_release_frees_the_slot_and_renew_stops_working(registry: Registry) -> None:
    await beat(registry, "a", capacity=1)
    first = await registry.allocate("tiny.en", sid())
    assert isinstance(first, Allocation)
    assert await registry.redis.exists(session_key(first.session_id))
    assert isinstance(await registry.allocate("tiny.en", sid()), NoCapacity)
    assert await registry.renew(first)
    await registry.release(first)
    assert not await registry.renew(first), "a released lease must not come back"
    assert not await registry.redis.exists(session_key(first.session_id))
    assert isinstance(await registry.allocate("tiny.en", sid()), Allocation)


async def test_draining_worker_gets_no_sessions(registry: Registry) -> None:
    await beat(registry, "a", status="draining")
    result = await registry.allocate("tiny.en", sid())
    assert isinstance(result, NoCapacity) and result.workers == 0


async def test_stale_worker_drops_out_by_ttl(registry: Registry) -> None:
    await beat(registry, "gone", ttl_ms=300)
    await beat(registry, "alive", capacity=4)
    held = await registry.allocate("tiny.en", sid())
    assert isinstance(held, Allocation)
    await asyncio.sleep(0.5)
    picks = {(await registry.allocate("tiny.en", sid())).worker_id for _ in range(2)}  # type: ignore[union-attr]
    assert picks == {"alive"}
    assert await registry.redis.smembers(WORKERS) == {"alive"}
    assert await registry.redis.zcard(leases_key("gone")) == 0
    assert [w.id for w in await registry.workers()] == ["alive"]


async def test_repair_expires_leases_nobody_renews(registry: Registry) -> None:
    short = Registry(registry.redis, lease_ms=200)
    await beat(registry, "a", capacity=1)
    leaked = await short.allocate("tiny.en", sid())  # a gateway that crashed holding it
    assert isinstance(leaked, Allocation)
    await asyncio.sleep(0.4)
    assert await registry.repair() == (0, 1)
    assert await registry.redis.zcard(leases_key("a")) == 0
    assert not await short.renew(leaked)
    assert isinstance(await registry.allocate("tiny.en", sid()), Allocation)


async def test_concurrent_allocations_never_exceed_capacity(registry: Registry) -> None:
    await beat(registry, "a", capacity=3)
    await beat(registry, "b", capacity=3)
    results = await asyncio.gather(*(registry.allocate("tiny.en", sid()) for _ in range(20)))
    granted = [r for r in results if isinstance(r, Allocation)]
    assert len(granted) == 6
    assert {w: sum(r.worker_id == w for r in granted) for w in "ab"} == {"a": 3, "b": 3}
    status = await registry.status()
    assert status["capacity"] == 6 and status["active_sessions"] == 6 and status["available_slots"] == 0
    assert status["status"] == "full" and status["models"] == ["tiny.en"]
    await asyncio.gather(*(registry.release(r) for r in granted))
    assert (await registry.status())["active_sessions"] == 0
