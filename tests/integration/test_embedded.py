"""Embedded PostgreSQL/Redis for `dalston up`, and the `dalston` command itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from dalston.embedded import DataDirLocked, EmbeddedPostgres, EmbeddedRedis, lock_data_dir
from dalston.fleet import NAME_WIDTH
from dalston.up import migrate_and_seed
from shared import db
from shared.bootstrap import hash_key
from shared.db import ApiKey, Tenant, async_url
from shared.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_KEYS = ("DALSTON_DATABASE_URL", "DALSTON_REDIS_URL", "DALSTON_DATA_DIR", "DALSTON_API_KEY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """migrate_and_seed points this process at the database it seeds; undo that afterwards."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    yield
    get_settings.cache_clear()
    db.get_sessionmaker.cache_clear()
    db.get_engine.cache_clear()


async def _query(url: str) -> tuple[list[str], list[str]]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            tenants = list(await conn.scalars(select(Tenant.name)))
            hashes = list(await conn.scalars(select(ApiKey.key_hash)))
            return tenants, hashes
    finally:
        await engine.dispose()


def _start(data_dir: Path) -> tuple[EmbeddedPostgres, EmbeddedRedis, dict[str, str]]:
    postgres, server = EmbeddedPostgres(data_dir), EmbeddedRedis(data_dir)
    env = {"DALSTON_DATABASE_URL": postgres.start(), "DALSTON_REDIS_URL": server.start()}
    return postgres, server, env


def test_data_survives_stop_and_start(tmp_path: Path, clean_env: None) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)

    postgres, server, env = _start(data_dir)
    try:
        hint = migrate_and_seed(settings, env)
        key = (data_dir / "admin_api_key").read_text().strip()
        assert key in hint
        assert (data_dir / "admin_api_key").stat().st_mode & 0o777 == 0o600
        client = redis.Redis.from_url(env["DALSTON_REDIS_URL"])
        client.set("dalston:test:marker", "kept")
        client.xadd("dalston:stream:test", {"task": "t1"})
        client.close()
    finally:
        server.stop()
        postgres.stop()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    postgres, server, env = _start(data_dir)
    try:
        tenants, hashes = asyncio.run(_query(env["DALSTON_DATABASE_URL"]))
        assert tenants == ["default"]
        assert hashes == [hash_key(key)]
        # Second start: no new key, the hint says where the first one is.
        assert migrate_and_seed(settings, env) == f"API key: in {data_dir.resolve() / 'admin_api_key'}"
        client = redis.Redis.from_url(env["DALSTON_REDIS_URL"])
        assert client.get("dalston:test:marker") == b"kept"
        assert client.xlen("dalston:stream:test") == 1
        client.close()
    finally:
        server.stop()
        postgres.stop()


def test_recovers_from_crashes_and_stale_pid_files(tmp_path: Path, clean_env: None) -> None:
    data_dir = tmp_path / "data"
    postgres, server, env = _start(data_dir)
    url = env["DALSTON_DATABASE_URL"]
    asyncio.run(_exec(url, "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('kept')"))
    redis.Redis.from_url(env["DALSTON_REDIS_URL"]).set("marker", "kept")

    # `dalston up` itself crashed: both servers are still running, a new start adopts/replaces them.
    postgres_again, server_again, env = _start(data_dir)
    assert asyncio.run(_fetch(env["DALSTON_DATABASE_URL"], "SELECT v FROM marker")) == "kept"
    assert redis.Redis.from_url(env["DALSTON_REDIS_URL"]).get("marker") == b"kept"
    assert server._proc is not None and server._proc.wait(5) is not None  # the orphan was shut down

    # The servers crashed (SIGKILL), and the dead postmaster's pid now belongs to another process.
    pidfile = data_dir / "postgres" / "postmaster.pid"
    postmaster = psutil.Process(int(pidfile.read_text().split()[0]))
    family = [postmaster, *postmaster.children(recursive=True)]
    for proc in family:
        proc.kill()
    psutil.wait_procs(family, timeout=10)
    assert server_again._proc is not None
    server_again._proc.kill()
    server_again._proc.wait()
    lines = pidfile.read_text().splitlines()
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    (data_dir / "redis" / "redis.pid").write_text(f"{os.getpid()}\n")

    postgres, server, env = _start(data_dir)
    try:
        assert asyncio.run(_fetch(env["DALSTON_DATABASE_URL"], "SELECT v FROM marker")) == "kept"
        assert redis.Redis.from_url(env["DALSTON_REDIS_URL"]).get("marker") == b"kept"
    finally:
        server.stop()
        postgres.stop()
        postgres_again.stop()


def test_one_dalston_per_data_dir(tmp_path: Path) -> None:
    with lock_data_dir(tmp_path):
        with pytest.raises(DataDirLocked):
            lock_data_dir(tmp_path)
    lock_data_dir(tmp_path).close()


async def _exec(url: str, sql: str) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            for statement in sql.split(";"):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _fetch(url: str, sql: str) -> object:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DALSTON_")}
    return env | extra


def test_dalston_migrate_cli(database_url: str, tmp_path: Path) -> None:
    key = "dk_test_" + os.urandom(8).hex()
    env = _cli_env(DALSTON_DATABASE_URL=database_url, DALSTON_DATA_DIR=str(tmp_path), DALSTON_API_KEY=key)
    for _ in range(2):  # idempotent
        result = subprocess.run(
            [sys.executable, "-m", "dalston.cli", "migrate"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr + result.stdout
        assert "DALSTON_API_KEY" in result.stdout
    _, hashes = asyncio.run(_query(database_url))
    assert hashes.count(hash_key(key)) == 1
    version = asyncio.run(_fetch(database_url, "SELECT version_num FROM alembic_version"))
    from alembic.script import ScriptDirectory

    assert version == ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    assert not (tmp_path / "postgres").exists()  # a configured URL starts nothing embedded


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_dalston_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    import threading

    port, data_dir = _free_port(), tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dalston.cli", "up", "-p", str(port), "--data-dir", str(data_dir)],
        env=_cli_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Dalston is up" in line:
                up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(120), "".join(lines[-80:])
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        key = (data_dir / "admin_api_key").read_text().strip()
        assert any(key in line and "shown once" in line for line in lines)
        assert any(line.startswith(f"{'dalston':<{NAME_WIDTH}} | Dalston is up: http://127.0.0.1:{port}") for line in lines)
        deadline = time.monotonic() + 60
        while not any(line.startswith(f"{'engine-faster-whisper':<{NAME_WIDTH}} | ") for line in lines):
            assert time.monotonic() < deadline, "".join(lines[-80:])
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        reader.join(5)
    assert code == 0, "".join(lines[-80:])
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    deadline = time.monotonic() + 30
    while left := [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]:
        assert time.monotonic() < deadline, f"processes left running after dalston stopped: {left}"
        time.sleep(0.1)
