"""The realtime worker registry and session allocation, in Redis.

Keys (spelled in shared.keys):
    dalston:realtime:workers               SET of worker ids
    dalston:realtime:worker:{id}           HASH url, capacity, active, models, status, ...;
                                           expires unless the worker heartbeats (TTL)
    dalston:realtime:worker:{id}:leases    ZSET session id -> lease expiry (ms, Redis clock)
    dalston:realtime:session:{id}          HASH worker_id, model, created_at; same lease TTL

A worker's load is the number of live leases on it. Allocation is one Lua script, so two
gateways can never hand out the same last slot: it drops workers whose heartbeat expired,
drops expired leases, and leases a slot on the least-loaded ready worker that serves the
model. The gateway renews the lease while the session lives and releases it on every
exit path; if the gateway itself dies, the lease expires and the slot comes back.
All times are Redis' own clock, so hosts' clocks need not agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared import keys


def _text(value: bytes | str) -> str:
    """A Redis reply as text (str already when the client decodes responses, as shared.streams' does)."""
    return value.decode() if isinstance(value, bytes) else value


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: workers set. ARGV: model, session id, lease ms, worker prefix, leases suffix, session prefix.
# Returns {worker id or '', url or '', workers serving the model, their capacity, their load}.
_ALLOCATE = (
    _NOW
    + """
local best, best_score, best_url = nil, nil, nil
local serving, capacity, used_total = 0, 0, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local wkey = ARGV[4] .. id
  local lkey = wkey .. ARGV[5]
  local w = redis.call('HMGET', wkey, 'url', 'capacity', 'models', 'status')
  if not w[1] then
    redis.call('SREM', KEYS[1], id)
    redis.call('DEL', lkey)
  else
    redis.call('ZREMRANGEBYSCORE', lkey, '-inf', now)
    if w[4] == 'ready' and string.find(w[3], ',' .. ARGV[1] .. ',', 1, true) then
      local cap = tonumber(w[2])
      local used = redis.call('ZCARD', lkey)
      serving = serving + 1
      capacity = capacity + cap
      used_total = used_total + used
      if used < cap then
        local score = used / cap
        if best == nil or score < best_score then
          best, best_score, best_url = id, score, w[1]
        end
      end
    end
  end
end
if best == nil then
  return {'', '', serving, capacity, used_total}
end
redis.call('ZADD', ARGV[4] .. best .. ARGV[5], now + tonumber(ARGV[3]), ARGV[2])
local skey = ARGV[6] .. ARGV[2]
redis.call('HSET', skey, 'worker_id', best, 'model', ARGV[1], 'created_at', now)
redis.call('PEXPIRE', skey, ARGV[3])
return {best, best_url, serving, capacity, used_total + 1}
"""
)

# KEYS: leases zset, session hash. ARGV: session id, lease ms. Renews only a live lease:
# a lease that was released or repaired away is not brought back.
_RENEW = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
)

# KEYS: workers set. ARGV: worker prefix, leases suffix. Returns {stale workers removed, leases expired}.
_REPAIR = (
    _NOW
    + """
local stale, expired = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local wkey = ARGV[1] .. id
  if redis.call('EXISTS', wkey) == 0 then
    redis.call('SREM', KEYS[1], id)
    stale = stale + redis.call('DEL', wkey .. ARGV[2])
  else
    expired = expired + redis.call('ZREMRANGEBYSCORE', wkey .. ARGV[2], '-inf', now)
  end
end
return {stale, expired}
"""
)


@dataclass(frozen=True)
class Allocation:
    worker_id: str
    url: str
    session_id: str


@dataclass(frozen=True)
class NoCapacity:
    model: str
    workers: int  # ready workers that serve the model
    capacity: int
    active: int

    @property
    def message(self) -> str:
        if self.workers == 0:
            return f"no realtime worker serving model {self.model!r} is available"
        return (
            f"all realtime workers serving model {self.model!r} are busy ({self.active} of {self.capacity} sessions); retry later"
        )


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    url: str
    status: str
    capacity: int
    active: int  # live leases
    sessions_reported: int  # sessions the worker itself reports
    models: list[str]
    heartbeat_age_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "capacity": self.capacity,
            "active_sessions": self.active,
            "models": self.models,
            "heartbeat_age_seconds": self.heartbeat_age_s,
        }


class Registry:
    def __init__(self, redis: aioredis.Redis, *, lease_ms: int = 30_000) -> None:
        self.redis = redis
        self.lease_ms = lease_ms
        self._allocate = redis.register_script(_ALLOCATE)
        self._renew = redis.register_script(_RENEW)
        self._repair = redis.register_script(_REPAIR)

    # -- workers -------------------------------------------------------------------------

    async def heartbeat(
        self, worker_id: str, *, url: str, capacity: int, active: int, models: list[str], status: str, ttl_ms: int
    ) -> None:
        key = keys.realtime_worker(worker_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "url": url,
                    "capacity": capacity,
                    "active": active,
                    "models": "," + ",".join(models) + ",",
                    "status": status,
                    "heartbeat_at": f"{time.time():.3f}",
                },
            )
            pipe.pexpire(key, ttl_ms)
            pipe.sadd(keys.REALTIME_WORKERS, worker_id)
            await pipe.execute()

    async def deregister(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.realtime_worker(worker_id), keys.realtime_leases(worker_id))
            pipe.srem(keys.REALTIME_WORKERS, worker_id)
            await pipe.execute()

    # -- sessions ------------------------------------------------------------------------

    async def allocate(self, model: str, session_id: str) -> Allocation | NoCapacity:
        worker_id, url, serving, capacity, active = await self._allocate(
            keys=[keys.REALTIME_WORKERS],
            args=[
                model,
                session_id,
                self.lease_ms,
                keys.REALTIME_WORKER_PREFIX,
                keys.REALTIME_LEASES_SUFFIX,
                keys.REALTIME_SESSION_PREFIX,
            ],
        )
        if not worker_id:
            return NoCapacity(model, int(serving), int(capacity), int(active))
        return Allocation(worker_id, url, session_id)

    async def renew(self, allocation: Allocation) -> bool:
        """Extend the lease; False when it is gone (released, or repaired after expiry)."""
        return bool(
            await self._renew(
                keys=[keys.realtime_leases(allocation.worker_id), keys.realtime_session(allocation.session_id)],
                args=[allocation.session_id, self.lease_ms],
            )
        )

    async def release(self, allocation: Allocation) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.realtime_leases(allocation.worker_id), allocation.session_id)
            pipe.delete(keys.realtime_session(allocation.session_id))
            await pipe.execute()

    async def repair(self) -> tuple[int, int]:
        """Drop workers whose heartbeat expired and leases nobody renewed."""
        stale, expired = await self._repair(
            keys=[keys.REALTIME_WORKERS], args=[keys.REALTIME_WORKER_PREFIX, keys.REALTIME_LEASES_SUFFIX]
        )
        return int(stale), int(expired)

    # -- status --------------------------------------------------------------------------

    async def workers(self) -> list[WorkerInfo]:
        now_s, now_us = await self.redis.time()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        out: list[WorkerInfo] = []
        for worker_id in sorted(map(_text, await self.redis.smembers(keys.REALTIME_WORKERS))):
            fields = {_text(k): _text(v) for k, v in (await self.redis.hgetall(keys.realtime_worker(worker_id))).items()}
            if not fields:
                continue
            active = await self.redis.zcount(keys.realtime_leases(worker_id), now_ms, "+inf")
            beat = fields.get("heartbeat_at")
            out.append(
                WorkerInfo(
                    id=worker_id,
                    url=fields.get("url", ""),
                    status=fields.get("status", "unknown"),
                    capacity=int(fields.get("capacity", 0)),
                    active=int(active),
                    sessions_reported=int(fields.get("active", 0)),
                    models=[m for m in fields.get("models", "").split(",") if m],
                    heartbeat_age_s=round(max(0.0, time.time() - float(beat)), 3) if beat else None,
                )
            )
        return out

    async def status(self) -> dict[str, Any]:
        workers = await self.workers()
        ready = [w for w in workers if w.status == "ready"]
        models = sorted({m for w in ready for m in w.models})
        return {
            "status": "available" if any(w.active < w.capacity for w in ready) else ("full" if ready else "unavailable"),
            "capacity": sum(w.capacity for w in ready),
            "active_sessions": sum(w.active for w in workers),
            "available_slots": sum(max(0, w.capacity - w.active) for w in ready),
            "models": models,
            "workers": [w.as_dict() for w in workers],
        }
