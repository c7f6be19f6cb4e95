"""Redis streams helper: the only place that speaks XADD / XREADGROUP / XACK / XAUTOCLAIM.

Messages are flat string maps with a single `data` field holding JSON, so every producer
and consumer shares one encoding.

Liveness: Redis dates a consumer only by its last delivery, so a busy consumer and a dead
one look alike. Each consumer process therefore keeps its own key (`Liveness`, spelled
`keys.consumer_alive`) with a short TTL, refreshed by a task of its own whatever the work
is doing; `claim_dead` takes over the pending messages of consumers whose key has expired,
within about one TTL of their death, and never those of a slow but live consumer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from shared import keys
from shared.settings import get_settings

log = structlog.get_logger()

# XCLAIM's min-idle-time when taking a dead consumer's messages: two survivors claiming at
# once cannot both win (the first claim resets the idle time), and a dead consumer's
# messages have idled for most of a TTL by the time its key expires.
DEAD_CLAIM_MIN_IDLE_MS = 1000


@dataclass(frozen=True)
class Message:
    stream: str
    id: str
    data: dict[str, Any]


def connect(url: str | None = None) -> aioredis.Redis:
    url = url or get_settings().redis_url
    if not url:
        raise RuntimeError("DALSTON_REDIS_URL is not set (run `dalston up` to start embedded Redis)")
    return aioredis.from_url(url, decode_responses=True)


@lru_cache
def get_redis() -> aioredis.Redis:
    return connect()


def _decode(stream: str, msg_id: str, fields: dict[str, str]) -> Message:
    try:
        data = json.loads(fields.get("data", "{}"))
    except json.JSONDecodeError:
        data = {"_undecodable": fields}
    return Message(stream=stream, id=msg_id, data=data)


async def publish(r: aioredis.Redis, stream: str, data: dict[str, Any]) -> str:
    # Our clients decode responses (see `connect`), so the new entry's id comes back as str.
    return cast(str, await r.xadd(stream, {"data": json.dumps(data, default=str)}))


async def ensure_group(r: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await r.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read_group(
    r: aioredis.Redis, stream: str, group: str, consumer: str, *, count: int = 1, block_ms: int = 2000, own: bool = False
) -> list[Message]:
    """New messages for `consumer`; with `own`, the ones it already holds (read again after
    it failed to handle them, e.g. while Redis or PostgreSQL was down)."""
    try:
        # RESP2 with decoded responses: [[stream, [(id, {field: value}), ...]], ...], or nothing on timeout.
        reply = cast(
            "list[list[Any]] | None",
            await r.xreadgroup(group, consumer, {stream: "0" if own else ">"}, count=count, block=None if own else block_ms),
        )
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # Group vanished (Redis restarted or was flushed): recreate it and read on.
        await ensure_group(r, stream, group)
        return []
    return [_decode(name, msg_id, fields) for name, entries in reply or [] for msg_id, fields in entries]


async def ack(r: aioredis.Redis, msg: Message, group: str) -> None:
    await r.xack(msg.stream, group, msg.id)


async def claim_idle(
    r: aioredis.Redis, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
) -> list[Message]:
    """Take over messages another consumer has held longer than `min_idle_ms` (it likely died)."""
    try:
        _next, entries, *_deleted = await r.xautoclaim(stream, group, consumer, min_idle_ms, "0-0", count=count)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        await ensure_group(r, stream, group)
        return []
    return [_decode(stream, msg_id, fields) for msg_id, fields in entries if fields is not None]


class Liveness:
    """One consumer's liveness key: `run()` refreshes it every third of its TTL until
    cancelled; `remove()` on a clean stop lets survivors take over at once."""

    def __init__(self, r: aioredis.Redis, group: str, consumer: str, ttl_s: float) -> None:
        self.r = r
        self.key = keys.consumer_alive(group, consumer)
        self.ttl_ms = max(100, int(ttl_s * 1000))

    async def beat(self) -> None:
        await self.r.set(self.key, str(time.time()), px=self.ttl_ms)

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except RedisError as exc:  # the consumer's own loop reports the outage
                log.debug("liveness_beat_failed", error=str(exc))
            await asyncio.sleep(self.ttl_ms / 3000)

    async def remove(self) -> None:
        await self.r.delete(self.key)


async def claim_dead(r: aioredis.Redis, stream: str, group: str, consumer: str, *, count: int = 10) -> list[Message]:
    """Take over up to `count` messages pending on consumers of `group` whose liveness key
    has expired (they died; see `Liveness`), and forget dead consumers that hold nothing."""
    try:
        consumers = await r.xinfo_consumers(stream, group)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
            raise
        return []
    others = [c for c in consumers if c["name"] != consumer]
    if not others:
        return []
    async with r.pipeline(transaction=False) as pipe:
        for info in others:
            pipe.exists(keys.consumer_alive(group, info["name"]))
        alive = await pipe.execute()
    taken: list[Message] = []
    for info, live in zip(others, alive):
        if live:
            continue
        name = info["name"]
        if int(info["pending"]) == 0:
            # Holds nothing: dropping it loses nothing (a live reader is recreated by its next read).
            await r.xgroup_delconsumer(stream, group, name)
            continue
        if len(taken) >= count:
            continue
        entries = await r.xpending_range(stream, group, min="-", max="+", count=count - len(taken), consumername=name)
        ids: list[Any] = [e["message_id"] for e in entries]
        claimed = cast(
            "list[tuple[str, dict[str, str] | None]]",
            await r.xclaim(stream, group, consumer, DEAD_CLAIM_MIN_IDLE_MS, ids) if ids else [],
        )
        messages = [_decode(stream, msg_id, fields) for msg_id, fields in claimed if fields is not None]
        if messages:
            log.info("claimed_from_dead_consumer", stream=stream, dead_consumer=name, message_ids=[m.id for m in messages])
        taken += messages
    return taken


async def in_flight(r: aioredis.Redis, stream: str, group: str, *, limit: int = 10_000) -> list[Message]:
    """Messages of `stream` that `group` has not acknowledged: delivered and pending, or not
    delivered yet (up to `limit` of each)."""
    try:
        groups = await r.xinfo_groups(stream)
    except ResponseError:
        return []  # no stream yet
    info = next((g for g in groups if g["name"] == group), None)
    if info is None:
        return []
    pending = await r.xpending_range(stream, group, min="-", max="+", count=limit)
    async with r.pipeline(transaction=False) as pipe:
        for entry in pending:
            pipe.xrange(stream, min=entry["message_id"], max=entry["message_id"], count=1)
        # Exclusive start: what was delivered last is pending (above) or acknowledged.
        pipe.xrange(stream, min=f"({info['last-delivered-id']}", max="+", count=limit)
        replies = await pipe.execute()
    return [_decode(stream, msg_id, fields) for reply in replies for msg_id, fields in reply]


async def holds(r: aioredis.Redis, msg: Message, group: str, consumer: str) -> bool:
    """Whether `msg` is still pending on `consumer`: neither acknowledged nor taken over by a
    peer that presumed it dead (e.g. while it was cut off from Redis longer than its TTL)."""
    try:
        pending = await r.xpending_range(msg.stream, group, min=msg.id, max=msg.id, count=1)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # Redis lost its data (restarted without persistence): no peer's claim survived either,
        # so the outcome is reported (asking again would wait forever).
        return True
    return bool(pending) and pending[0]["consumer"] == consumer


# Reset the idle time of message ARGV[3] only while `ARGV[2]` holds it. In one script so a
# peer's claim cannot land between the check and XCLAIM: XCLAIM alone (min-idle 0) would
# take the message back from a peer that reclaimed it and is now running it.
_TOUCH = """
local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #entry == 0 or entry[1][2] ~= ARGV[2] then
    return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


async def touch(r: aioredis.Redis, msg: Message, group: str, consumer: str) -> bool:
    """Reset the idle time of a message `consumer` holds so live work is not reclaimed by
    other consumers. False, changing nothing, when it no longer holds it (acknowledged, or
    taken over by a peer that presumed it dead)."""
    return bool(await cast("Awaitable[int]", r.eval(_TOUCH, 1, msg.stream, group, consumer, msg.id)))


async def release(r: aioredis.Redis, msg: Message, group: str, consumer: str) -> None:
    """Hand back a message `consumer` holds but will not finish (it is stopping): make it
    claimable by `claim_dead` at once and take back the delivery its claim will add, so a
    task handed back on every rolling restart is never mistaken for a poison message.
    The caller then removes its liveness key."""
    deliveries = await delivery_count(r, msg, group)
    await r.xclaim(
        msg.stream,
        group,
        consumer,
        0,
        [msg.id],
        idle=DEAD_CLAIM_MIN_IDLE_MS,
        retrycount=max(0, deliveries - 1),
        justid=True,
    )


@dataclass(frozen=True)
class GroupInfo:
    length: int  # entries in the stream (acknowledged ones stay until trimmed or deleted)
    pending: int  # delivered to a consumer of the group, not acknowledged yet
    lag: int | None  # not yet delivered to the group; None when Redis cannot tell (before 7.0, or after XDEL)
    consumers: int


async def group_info(r: aioredis.Redis, stream: str, group: str) -> GroupInfo | None:
    """`stream`'s length and `group`'s backlog on it; None when the stream does not exist."""
    if not await r.exists(stream):
        return None
    length = int(await r.xlen(stream))
    try:
        groups = await r.xinfo_groups(stream)
    except ResponseError:
        return None  # deleted between the two calls
    for info in groups:
        if info["name"] == group:
            lag = info.get("lag")
            return GroupInfo(
                length=length,
                pending=int(info["pending"]),
                lag=None if lag is None else int(lag),
                consumers=int(info["consumers"]),
            )
    return GroupInfo(length=length, pending=0, lag=length, consumers=0)  # no group yet: nothing was delivered


async def delivery_count(r: aioredis.Redis, msg: Message, group: str) -> int:
    pending = await r.xpending_range(msg.stream, group, min=msg.id, max=msg.id, count=1)
    return int(pending[0]["times_delivered"]) if pending else 0
