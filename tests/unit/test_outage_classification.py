"""shared.outages: which exceptions mean "a dependency is down", raised by the real clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support import free_port

from shared.outages import Dependency, unavailable


def _raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the point is to look at it
        return exc
    raise AssertionError("nothing was raised")


def test_refused_connections_name_their_dependency() -> None:
    port = free_port()  # nothing listens there

    async def sqlalchemy_query() -> None:
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    refused = _raised(lambda: asyncio.run(sqlalchemy_query()))
    # SQLAlchemy lets asyncpg's refused connect escape as a bare OSError: the traceback says whose.
    assert isinstance(refused, OSError)
    assert unavailable(refused) is Dependency.DATABASE

    missing_socket = _raised(lambda: asyncio.run(asyncpg.connect(host="/nonexistent-socket-dir", user="postgres")))
    assert unavailable(missing_socket) is Dependency.DATABASE

    down = _raised(lambda: redis.Redis(port=port).ping())
    assert unavailable(down) is Dependency.REDIS

    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="x",
        aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )  # fmt: skip
    assert unavailable(_raised(lambda: s3.head_object(Bucket="b", Key="k"))) is Dependency.STORAGE


def test_wrapped_and_grouped_outages_are_found() -> None:
    down = _raised(lambda: redis.Redis(port=free_port()).ping())

    def wrapped() -> None:
        raise RuntimeError("while notifying") from down

    assert unavailable(_raised(wrapped)) is Dependency.REDIS
    assert unavailable(ExceptionGroup("tasks", [ValueError("x"), down])) is Dependency.REDIS


def test_other_errors_are_not_outages(tmp_path: Path) -> None:
    # A missing local file is an OSError too, but no dependency's client raised it.
    assert unavailable(_raised(lambda: (tmp_path / "absent").read_bytes())) is None
    assert unavailable(ValueError("bad input")) is None
    assert unavailable(redis.exceptions.ResponseError("WRONGTYPE Operation against a key")) is None
    assert unavailable(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError("duplicate key"))) is None
