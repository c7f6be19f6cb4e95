"""Per-tenant rate limits: requests per window, concurrent jobs, concurrent realtime sessions.

- **Requests**: a fixed window per tenant in Redis (`dalston:ratelimit:req:{tenant}:{n}`),
  counted by one Lua script on Redis' clock, so every gateway shares the count and a burst
  of concurrent requests gets exactly `limit` through. Windows are aligned to multiples
  of `rate_limit_window_s` since the Unix epoch (a 60 s window resets at the start of each
  minute); a refused request still counts, so a client that keeps hammering stays refused
  until the window turns. Every authenticated request and WebSocket connect counts.
- **Concurrent jobs**: the tenant's jobs that are `pending` or `running`, counted in
  PostgreSQL (the source of truth, so nothing can drift) inside the transaction that
  inserts the new job, under a per-tenant advisory lock, so concurrent submissions cannot
  both take the last slot. A slot frees when a job completes, fails or is cancelled.
- **Concurrent realtime sessions**: a per-tenant sorted set of session leases
  (`dalston:ratelimit:sessions:{tenant}`), taken before a worker is reserved, renewed with
  the worker lease and released on every exit; a crashed gateway's lease expires after
  `realtime_lease_ttl_s`.

Refusals are `429` with `Retry-After` and `RateLimit-Limit`/`RateLimit-Remaining`/
`RateLimit-Reset` (seconds), in the API's own error shape; successful requests carry the
`RateLimit-*` headers of the request window. Validation always runs first where the order
is ours to choose (jobs: options and audio are checked before the slot), so a request the
client must change gets its 4xx, never a 429 it would retry. A limit of 0 means unlimited;
`rate_limit_overrides` sets per-tenant values. Redis trouble fails open (logged): rate
limiting must not take the API down with it.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from gateway.errors import ApiError
from shared import keys
from shared.db import Job, JobStatus
from shared.settings import Settings

log = structlog.get_logger("gateway.ratelimit")

RATE_LIMITED = "rate_limited"
TOO_MANY_JOBS = "too_many_concurrent_jobs"
TOO_MANY_SESSIONS = "too_many_concurrent_sessions"
# A job's or session's end cannot be predicted; this is when a retry is worth trying.
CONCURRENCY_RETRY_AFTER_S = 5
ACTIVE_JOB_STATUSES = (JobStatus.pending.value, JobStatus.running.value)


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: counter prefix. ARGV: window ms. Returns {count in this window, ms until it ends}.
_HIT = (
    _NOW
    + """
local window = tonumber(ARGV[1])
local index = math.floor(now / window)
local key = KEYS[1] .. ':' .. index
local count = redis.call('INCR', key)
if count == 1 then redis.call('PEXPIRE', key, window + 1000) end
return {count, (index + 1) * window - now}
"""
)

# KEYS: tenant session set. ARGV: session id, lease ms, limit. Returns {1 taken | 0 full, sessions}.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[3]) and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {0, held}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1, redis.call('ZCARD', KEYS[1])}
"""
)

# KEYS: tenant session set. ARGV: session id, lease ms. Returns 1 when the lease was still held.
_RENEW = (
    _NOW
    + """
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return renewed
"""
)


@dataclass(frozen=True)
class Limits:
    requests: int
    window_s: int
    jobs: int
    sessions: int


def limits_for(settings: Settings, tenant_id: uuid.UUID) -> Limits:
    """The tenant's limits: the defaults, with its entry in `rate_limit_overrides` on top."""
    override = settings.rate_limit_overrides.get(str(tenant_id), {})
    return Limits(
        requests=int(override.get("requests", settings.rate_limit_requests)),
        window_s=max(1, int(override.get("window_s", settings.rate_limit_window_s))),
        jobs=int(override.get("jobs", settings.rate_limit_concurrent_jobs)),
        sessions=int(override.get("sessions", settings.rate_limit_concurrent_sessions)),
    )


@dataclass(frozen=True)
class Quota:
    """One limit's state, as the `RateLimit-*` headers report it."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


class RateLimited(ApiError):
    def __init__(self, code: str, message: str, quota: Quota) -> None:
        super().__init__(429, code, message, headers={"Retry-After": str(quota.reset_s), **quota.headers()})
        self.quota = quota


# -- requests per window --------------------------------------------------------------


async def hit(redis, tenant_id: uuid.UUID, limits: Limits) -> Quota:
    """Count one request against the tenant's window; raises RateLimited past the limit."""
    window_ms = limits.window_s * 1000
    count, remaining_ms = await redis.eval(_HIT, 1, keys.ratelimit_requests(tenant_id), window_ms)
    quota = Quota(
        limit=limits.requests, remaining=max(0, limits.requests - int(count)), reset_s=max(1, math.ceil(int(remaining_ms) / 1000))
    )
    if int(count) > limits.requests:
        raise RateLimited(
            RATE_LIMITED,
            f"rate limit exceeded: {limits.requests} requests per {limits.window_s} s for this tenant; "
            f"retry in {quota.reset_s} s",
            quota,
        )
    return quota


async def enforce_requests(conn: HTTPConnection, services, tenant_id: uuid.UUID) -> None:
    """Count an authenticated request (or WebSocket connect); remember its quota for the headers."""
    limits = limits_for(services.settings, tenant_id)
    if limits.requests <= 0:
        return
    try:
        quota = await hit(services.redis, tenant_id, limits)
    except RedisError as exc:
        log.warning("rate_limit_unavailable", error=f"{type(exc).__name__}: {exc}")
        return
    conn.state.rate_limit = quota


def response_headers(state: dict) -> list[tuple[bytes, bytes]]:
    """The `RateLimit-*` headers for a response whose request was counted (see gateway.limits)."""
    quota = state.get("rate_limit")
    if not isinstance(quota, Quota):
        return []
    return [(name.lower().encode(), value.encode()) for name, value in quota.headers().items()]


# -- concurrent jobs ------------------------------------------------------------------


async def _active_jobs(db: AsyncSession, tenant_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id, Job.status.in_(ACTIVE_JOB_STATUSES))
    return int(await db.scalar(query) or 0)


def _too_many_jobs(limit: int) -> RateLimited:
    return RateLimited(
        TOO_MANY_JOBS,
        f"this tenant already has {limit} jobs pending or running (the limit); submit again when one finishes",
        Quota(limit=limit, remaining=0, reset_s=CONCURRENCY_RETRY_AFTER_S),
    )


async def check_job_slot(services, tenant_id: uuid.UUID) -> None:
    """A cheap early refusal before the upload is stored; `claim_job_slot` is the real check."""
    limit = limits_for(services.settings, tenant_id).jobs
    if limit <= 0:
        return
    async with services.sessionmaker() as db:
        if await _active_jobs(db, tenant_id) >= limit:
            raise _too_many_jobs(limit)


async def claim_job_slot(db: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Call in the transaction that inserts the job: serialises the tenant's submissions
    (advisory lock until commit), then refuses when its active jobs are at the limit."""
    limit = limits_for(settings, tenant_id).jobs
    if limit <= 0:
        return
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": keys.tenant_jobs_lock(tenant_id)})
    if await _active_jobs(db, tenant_id) >= limit:
        raise _too_many_jobs(limit)


# -- concurrent realtime sessions -----------------------------------------------------


@dataclass(frozen=True)
class SessionSlot:
    tenant_id: uuid.UUID
    session_id: str
    lease_ms: int

    @property
    def key(self) -> str:
        return keys.ratelimit_sessions(self.tenant_id)


async def acquire_session(services, tenant_id: uuid.UUID, session_id: str) -> SessionSlot | None:
    """Take one of the tenant's session slots (None when sessions are unlimited).
    Raises RateLimited when all are held."""
    limit = limits_for(services.settings, tenant_id).sessions
    if limit <= 0:
        return None
    slot = SessionSlot(tenant_id, session_id, int(services.settings.realtime_lease_ttl_s * 1000))
    taken, held = await services.redis.eval(_ACQUIRE, 1, slot.key, session_id, slot.lease_ms, limit)
    if not int(taken):
        raise RateLimited(
            TOO_MANY_SESSIONS,
            f"this tenant already has {int(held)} realtime sessions open (the limit is {limit}); close one and reconnect",
            Quota(limit=limit, remaining=0, reset_s=CONCURRENCY_RETRY_AFTER_S),
        )
    return slot


async def renew_session(redis, slot: SessionSlot) -> bool:
    return bool(int(await redis.eval(_RENEW, 1, slot.key, slot.session_id, slot.lease_ms)))


async def keep_session(redis, slot: SessionSlot | None, every_s: float) -> None:
    """Renew the slot's lease while the session lives (run as a task; cancel it at the end)."""
    if slot is None:
        return
    while True:
        await asyncio.sleep(every_s)
        try:
            await renew_session(redis, slot)
        except RedisError as exc:  # a hiccup: the next renewal may succeed
            log.warning("session_slot_renew_failed", error=f"{type(exc).__name__}: {exc}")


async def release_session(redis, slot: SessionSlot | None) -> None:
    """Give the slot back; on Redis trouble its lease expires by itself."""
    if slot is None:
        return
    try:
        await redis.zrem(slot.key, slot.session_id)
    except RedisError as exc:
        log.warning("session_slot_release_failed", error=f"{type(exc).__name__}: {exc}")
