"""Waiting for a job to finish, for the synchronous ElevenLabs/OpenAI endpoints.

Subscribing before reading the row closes the race where the job finishes between the
read and the subscribe: either the read sees the terminal state or the message arrives.
When Redis is down the wait goes on by reading the row every second.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import Job, JobStatus
from shared.keys import job_done_channel

log = structlog.get_logger("gateway.waiting")
# Without Redis' notification, how often the row is read while waiting.
POLL_INTERVAL_S = 1.0


class JobVanished(LookupError):
    """The job row was deleted while someone waited on it."""


async def _load(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessionmaker() as db:
        job = await db.get(Job, job_id)
    if job is None:
        raise JobVanished(str(job_id))
    return job


async def wait_for_job(
    redis: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID | str, timeout: float
) -> Job:
    """Return the job once it is terminal; raise TimeoutError after `timeout` seconds."""
    job_id = uuid.UUID(str(job_id))
    async with asyncio.timeout(timeout):
        try:
            return await _wait_notified(redis, sessionmaker, job_id)
        except RedisError as exc:
            # The job is in PostgreSQL and runs on when Redis returns: a caller that was
            # accepted keeps waiting for its answer rather than retrying into a duplicate.
            log.warning("job_wait_polling", job_id=str(job_id), error=f"{type(exc).__name__}: {exc}")
            return await _wait_polling(sessionmaker, job_id)


async def _wait_notified(redis: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(job_done_channel(str(job_id)))
        job = await _load(sessionmaker, job_id)
        if JobStatus(job.status).terminal:
            return job
        while True:
            # get_message returns None on its own short timeout; loop until a message.
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            # The row, not the message, is the truth; the message only says "look now".
            job = await _load(sessionmaker, job_id)
            if JobStatus(job.status).terminal:
                return job


async def _wait_polling(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    while True:
        job = await _load(sessionmaker, job_id)
        if JobStatus(job.status).terminal:
            return job
        await asyncio.sleep(POLL_INTERVAL_S)
