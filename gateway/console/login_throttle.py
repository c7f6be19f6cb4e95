"""Brute-force throttle for the console login (`POST /v1/console/session`).

Failed logins are counted per client address in Redis (`dalston:console-login-failures:
{address}`), in a window that starts at the first failure and lasts
`console_login_window_s`. Once `console_login_max_failures` have failed, every login from
that address, a right key included, answers `429 rate_limited` with `Retry-After` until
the window ends: a right key must not be told apart from a wrong one while throttled, or
the throttle would still answer the attacker's question. Successful logins do not count
and do not reset the count (a success in between must not buy more guesses).

Only the address is counted, not the key's prefix: keys are 256-bit random, so guessing
one is hopeless anyway, and a per-prefix count would let anyone lock a known key's owner
out of the console. Redis trouble fails open (logged), as the request limits do.
"""

from __future__ import annotations

import math

import structlog
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from gateway.ratelimit import RATE_LIMITED, Quota, RateLimited
from gateway.services import Services
from shared import keys
from shared.settings import Settings

log = structlog.get_logger("gateway.console.login_throttle")

# KEYS: failure counter. ARGV: window ms. Counts one failure; the first starts the window.
# A counter left without an expiry (it cannot happen, but would throttle forever) gets one.
_FAIL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
return count
"""


# KEYS: failure counter. Returns {failures, ms until the window ends}.
_READ = """
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}
"""


def _address(conn: HTTPConnection) -> str:
    # The peer as the server sees it; behind a reverse proxy, uvicorn's --forwarded-allow-ips
    # makes this the X-Forwarded-For client.
    return conn.client.host if conn.client else "unknown"


def _throttled(settings: Settings, ttl_ms: int) -> RateLimited:
    wait_s = max(1, math.ceil(ttl_ms / 1000))
    return RateLimited(
        RATE_LIMITED,
        f"too many failed logins from this address: try again in {wait_s} s",
        Quota(limit=settings.console_login_max_failures, remaining=0, reset_s=wait_s),
    )


async def check(conn: HTTPConnection, services: Services) -> None:
    """Raise 429 when this address has used up its failed logins in the current window."""
    settings = services.settings
    if settings.console_login_max_failures <= 0:
        return
    key = keys.console_login_failures(_address(conn))
    try:
        count, ttl_ms = await services.redis.eval(_READ, 1, key)
    except RedisError as exc:
        log.warning("login_throttle_unavailable", error=f"{type(exc).__name__}: {exc}")
        return
    failures = int(count or 0)
    if failures >= settings.console_login_max_failures and int(ttl_ms) > 0:
        raise _throttled(settings, int(ttl_ms))


async def failed(conn: HTTPConnection, services: Services) -> None:
    """Count a failed login (it still answers 401: the client learns its key is wrong; the
    next attempt past the limit gets the 429)."""
    settings = services.settings
    if settings.console_login_max_failures <= 0:
        return
    address = _address(conn)
    try:
        count = await services.redis.eval(_FAIL, 1, keys.console_login_failures(address), settings.console_login_window_s * 1000)
    except RedisError as exc:
        log.warning("login_throttle_unavailable", error=f"{type(exc).__name__}: {exc}")
        return
    if int(count) == settings.console_login_max_failures:
        log.warning("console_login_throttled", client_ip=address, failures=int(count))
