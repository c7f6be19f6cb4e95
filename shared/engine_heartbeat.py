"""Batch engine heartbeats: which engine processes are running now, and what they are doing.

Keys (spelled in shared.keys):
    dalston:engine:{engine_id}:instances               SET of instance ids
    dalston:engine:{engine_id}:instance:{instance_id}  HASH host, pid, started_at, last_heartbeat,
                                                       current task, tasks done/failed; expires
                                                       unless the process heartbeats (TTL)

The engine runner writes its hash every `interval_s` and whenever it starts or finishes a
task, and deletes it on a graceful shutdown; a process that is killed disappears when its
TTL passes. Redis' consumer-group bookkeeping cannot tell this: it dates a consumer by its
last delivery, so an engine waiting on an empty stream looks the same as a dead one.

Heartbeat ages are measured on Redis' clock (the TTL left on the hash), so the reader's
and the engine's clocks need not agree; `last_heartbeat` is the engine's own clock, for display.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared import keys

log = structlog.get_logger()

# Never slower than this, however long the claim timeout: the console's "live" must mean now.
MAX_INTERVAL_S = 5.0
BEATS_PER_TTL = 3


def timing(claim_idle_ms: int) -> tuple[float, float]:
    """(interval, TTL) in seconds for an engine whose stalled work is reclaimed after
    `claim_idle_ms`: a killed instance vanishes no later than its work is taken over."""
    ttl_s = min(claim_idle_ms / 1000, MAX_INTERVAL_S * BEATS_PER_TTL)
    return ttl_s / BEATS_PER_TTL, ttl_s


# KEYS: the index set, then the instance hashes. Forgets an id only if its hash is still gone,
# so an instance that beat again since it was read is never dropped from the index.
_PRUNE = """
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return n
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class EngineInstance:
    engine_id: str
    instance_id: str  # the consumer name it reads its stream with
    host: str
    pid: int
    started_at: float  # epoch seconds, the engine's clock
    last_heartbeat: float  # epoch seconds, the engine's clock
    heartbeat_age_s: float  # by Redis' clock: TTL minus the TTL left
    current_task_id: str | None
    current_task_started_at: float | None
    tasks_done: int  # tasks this process completed since it started
    tasks_failed: int  # tasks this process reported failed since it started


class Heartbeat:
    """One engine process's heartbeat. `run()` beats until cancelled; `remove()` on shutdown."""

    def __init__(self, r: aioredis.Redis, engine_id: str, instance_id: str, *, interval_s: float, ttl_s: float) -> None:
        self.r = r
        self.engine_id = engine_id
        self.instance_id = instance_id
        self.interval_s = interval_s
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = time.time()
        self.current_task_id: str | None = None
        self.current_task_started_at: float | None = None
        self.tasks_done = 0
        self.tasks_failed = 0
        self.key = keys.engine_instance(engine_id, instance_id)

    async def beat(self) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key,
                mapping={
                    "host": self.host,
                    "pid": self.pid,
                    "started_at": f"{self.started_at:.3f}",
                    "last_heartbeat": f"{time.time():.3f}",
                    "current_task_id": self.current_task_id or "",
                    "current_task_started_at": ""
                    if self.current_task_started_at is None
                    else f"{self.current_task_started_at:.3f}",
                    "tasks_done": self.tasks_done,
                    "tasks_failed": self.tasks_failed,
                    "ttl_ms": self.ttl_ms,
                },
            )
            pipe.pexpire(self.key, self.ttl_ms)
            pipe.sadd(keys.engine_instances(self.engine_id), self.instance_id)
            await pipe.execute()

    async def _beat_quietly(self) -> None:
        try:
            await self.beat()
        except RedisError as exc:
            # The runner's own loop reports Redis outages; the next beat catches up.
            log.warning("engine_heartbeat_failed", error=str(exc))

    async def run(self) -> None:
        while True:
            await self._beat_quietly()
            await asyncio.sleep(self.interval_s)

    async def task_started(self, task_id: str) -> None:
        self.current_task_id, self.current_task_started_at = task_id, time.time()
        await self._beat_quietly()

    async def task_finished(self) -> None:
        self.current_task_id = self.current_task_started_at = None
        await self._beat_quietly()

    def count(self, *, failed: bool) -> None:
        """An outcome this process reported (task.completed or task.failed); shown from the next beat."""
        if failed:
            self.tasks_failed += 1
        else:
            self.tasks_done += 1

    async def remove(self) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.srem(keys.engine_instances(self.engine_id), self.instance_id)
            await pipe.execute()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


async def instances(r: aioredis.Redis, engine_id: str) -> list[EngineInstance]:
    """The live instances of `engine_id`, oldest first; ids whose hash expired are pruned."""
    index = keys.engine_instances(engine_id)
    ids = sorted(map(_text, await r.smembers(index)))
    if not ids:
        return []
    async with r.pipeline(transaction=False) as pipe:
        for instance_id in ids:
            pipe.hgetall(keys.engine_instance(engine_id, instance_id))
            pipe.pttl(keys.engine_instance(engine_id, instance_id))
        replies = await pipe.execute()
    live: list[EngineInstance] = []
    gone: list[str] = []
    for n, instance_id in enumerate(ids):
        raw, pttl = replies[2 * n], int(replies[2 * n + 1])
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if not fields or pttl < 0:
            gone.append(instance_id)
            continue
        ttl_ms = _int(fields.get("ttl_ms"))
        live.append(
            EngineInstance(
                engine_id=engine_id,
                instance_id=instance_id,
                host=fields.get("host", ""),
                pid=_int(fields.get("pid")),
                started_at=_float(fields.get("started_at")) or 0.0,
                last_heartbeat=_float(fields.get("last_heartbeat")) or 0.0,
                heartbeat_age_s=round(max(0, ttl_ms - pttl) / 1000, 3),
                current_task_id=fields.get("current_task_id") or None,
                current_task_started_at=_float(fields.get("current_task_started_at")),
                tasks_done=_int(fields.get("tasks_done")),
                tasks_failed=_int(fields.get("tasks_failed")),
            )
        )
    if gone:
        await r.eval(_PRUNE, 1 + len(gone), index, *(keys.engine_instance(engine_id, i) for i in gone), *gone)
    return sorted(live, key=lambda i: (i.started_at, i.instance_id))
