"""Shared test fixtures: real PostgreSQL, Redis and an S3-compatible server.

PostgreSQL and Redis are the machine's (127.0.0.1:5432 / :6379, overridable with
TEST_POSTGRES_URL / TEST_REDIS_URL). Each test session gets a fresh database and its own
Redis database index, so parallel runs and leftovers never interfere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def create_database() -> str:
    """Create an empty database with a unique name and return its URL."""
    import asyncio

    import asyncpg

    name = f"dalston_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{POSTGRES_URL}/{name}"


def drop_database(url: str) -> None:
    import asyncio

    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for the test session."""
    from shared.bootstrap import migrate

    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


_redis_db_counter = iter(range(1, 16))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database index of our own, flushed before and after."""
    import redis

    index = int(os.environ.get("TEST_REDIS_DB", next(_redis_db_counter)))
    url = f"{REDIS_URL}/{index}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto_server) on loopback; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_env(s3_server: str) -> dict[str, str]:
    """DALSTON_* variables that point the S3 backend at the test server."""
    return {
        "DALSTON_STORAGE_BACKEND": "s3",
        "DALSTON_S3_ENDPOINT_URL": s3_server,
        "DALSTON_S3_BUCKET": f"dalston-test-{uuid.uuid4().hex[:8]}",
        "DALSTON_S3_ACCESS_KEY_ID": "test",
        "DALSTON_S3_SECRET_ACCESS_KEY": "test",
        "DALSTON_S3_REGION": "us-east-1",
    }
