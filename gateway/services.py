"""The clients a running gateway holds, built once per app in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared import streams
from shared.db import async_url
from shared.settings import Settings
from shared.storage import ObjectStore, make_store


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    store: ObjectStore

    @classmethod
    def build(cls, settings: Settings) -> Services:
        if not settings.database_url:
            raise RuntimeError("DALSTON_DATABASE_URL is not set (run `dalston up` to start embedded PostgreSQL)")
        engine = create_async_engine(async_url(settings.database_url), pool_pre_ping=True, pool_size=10, max_overflow=20)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            redis=streams.connect(settings.redis_url),
            store=make_store(settings),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
