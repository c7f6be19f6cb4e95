"""Alembic environment: runs migrations over the async engine from settings."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import Base, async_url
from shared.settings import get_settings

target_metadata = Base.metadata
# Any number of services may migrate at start-up; one lock makes them take turns.
MIGRATION_LOCK_ID = 0x0DA15709


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _main() -> None:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    engine = create_async_engine(async_url(url))
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
asyncio.run(_main())
