"""Shared test fixtures: real PostgreSQL, Redis and an S3-compatible server.

PostgreSQL and Redis are the machine's (127.0.0.1:5432 / :6379, overridable with
TEST_POSTGRES_URL / TEST_REDIS_URL). Each test session gets a fresh database; Redis is
flushed around each module (e2e fleets use their own database indexes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from support import REDIS_URL, create_database, drop_database, free_port, wait_for_port


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for the test session."""
    from shared.bootstrap import migrate

    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis database index of our own (TEST_REDIS_DB, default 1), flushed around each
    test module so one module's stream messages never reach another's consumers."""
    import redis

    index = int(os.environ.get("TEST_REDIS_DB", "1"))
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
