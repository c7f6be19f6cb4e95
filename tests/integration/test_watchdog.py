"""dalston.watchdog restarts SIGKILLed embedded servers on their data, at their address."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
import redis
from test_embedded import _exec, _fetch

from dalston.embedded import EmbeddedPostgres, EmbeddedRedis
from dalston.watchdog import Watchdog


class Said(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self):
            assert time.monotonic() < deadline, f"never said {text!r}: {list(self)}"
            time.sleep(0.1)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DALSTON_DATABASE_URL", "DALSTON_REDIS_URL", "DALSTON_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)


def test_killed_servers_come_back_with_their_data(tmp_path: Path, clean_env: None) -> None:
    postgres, server = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
    database_url, redis_url = postgres.start(), server.start()
    said = Said()
    watchdog = Watchdog([postgres, server], said)
    watchdog.start()
    try:
        client = redis.Redis.from_url(redis_url)
        client.xadd("dalston:stream:test", {"task": "t1"})
        # Written to the AOF file (the OS keeps it through a SIGKILL): wait for that, not a guessed second.
        aof = Path(client.config_get("dir")["dir"])
        deadline = time.monotonic() + 30
        while not any(b"dalston:stream:test" in f.read_bytes() for f in aof.rglob("*.aof")):
            assert time.monotonic() < deadline, f"the entry never reached the AOF in {aof}"
            time.sleep(0.05)
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGKILL)
        said.wait_for("embedded Redis is back")
        assert any("embedded Redis died" in line for line in said)
        assert server.url == redis_url and client.xlen("dalston:stream:test") == 1  # same address, AOF replayed
        assert psutil.Process(server._proc.pid).status() != psutil.STATUS_ZOMBIE

        asyncio.run(_exec(database_url, "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('kept')"))
        postmaster = psutil.Process(int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0]))
        postmaster.kill()  # its backends are left behind, as after a real crash
        said.wait_for("embedded PostgreSQL is back")
        assert postgres.url == database_url
        assert asyncio.run(_fetch(database_url, "SELECT v FROM marker")) == "kept"
    finally:
        watchdog.stop()
        server.stop()
        postgres.stop()
    print("\n" + "\n".join(said))


def test_a_server_that_cannot_come_back_is_reported(tmp_path: Path, clean_env: None, monkeypatch) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    said = Said()
    monkeypatch.setattr("dalston.watchdog.BACKOFF_MAX_S", 0.2)
    watchdog = Watchdog([server], said)
    watchdog.start()
    try:
        # Its data directory becomes a file: the server cannot start again there.
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGKILL)
        shutil.rmtree(server.dir)
        server.dir.write_text("not a directory")
        said.wait_for("cannot come back", timeout=60)
        line = next(line for line in said if "cannot come back" in line)
        assert str(server.log_path) in line and "503" in line
    finally:
        watchdog.stop()
        server.stop()
