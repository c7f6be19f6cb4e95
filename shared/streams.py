"""Redis streams helper: the only place that speaks XADD / XREADGROUP / XACK / XAUTOCLAIM.

Messages are flat string maps with a single `data` field holding JSON, so every producer
and consumer shares one encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.settings import get_settings


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
    r: aioredis.Redis, stream: str, group: str, consumer: str, *, count: int = 1, block_ms: int = 2000
) -> list[Message]:
    try:
        # RESP2 with decoded responses: [[stream, [(id, {field: value}), ...]], ...], or nothing on timeout.
        reply = cast(
            "list[list[Any]] | None",
            await r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms),
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


async def touch(r: aioredis.Redis, msg: Message, group: str, consumer: str) -> None:
    """Reset a held message's idle time so live work is not reclaimed by other consumers."""
    await r.xclaim(msg.stream, group, consumer, 0, [msg.id], justid=True)


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
