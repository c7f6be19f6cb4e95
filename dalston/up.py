"""`dalston up` and `dalston migrate`: resolve settings, bring up infrastructure, run the fleet."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import httpx

from dalston.console_build import CONSOLE_DIR, build_console
from dalston.embedded import EmbeddedPostgres, EmbeddedRedis, lock_data_dir
from dalston.fleet import NAME_WIDTH, Fleet, configured_engines, default_services, not_installed
from dalston.watchdog import Server, Watchdog
from shared import catalogue
from shared.settings import Settings, get_settings

HEALTH_TIMEOUT_S = 180.0


def say(message: str) -> None:
    print(f"{'dalston':<{NAME_WIDTH}} | {message}", flush=True)


@contextlib.contextmanager
def infrastructure(settings: Settings, *, redis: bool = True, watch: bool = False) -> Iterator[dict[str, str]]:
    """Start embedded PostgreSQL/Redis for whichever URL is unset; yield the resolved DALSTON_* env.
    With `watch`, a dead embedded server is restarted (dalston.watchdog). Embedded servers
    are stopped when the block exits."""
    data_dir = settings.data_dir.resolve()
    env = {"DALSTON_DATA_DIR": str(data_dir)}
    embedded: list[Server] = []
    with contextlib.ExitStack() as stack:
        if not settings.database_url or (redis and not settings.redis_url):
            stack.enter_context(lock_data_dir(data_dir))
        if settings.database_url:
            env["DALSTON_DATABASE_URL"] = settings.database_url
        else:
            postgres = EmbeddedPostgres(data_dir)
            stack.callback(postgres.stop)
            stack.callback(say, "stopping embedded PostgreSQL")
            env["DALSTON_DATABASE_URL"] = postgres.start()
            embedded.append(postgres)
            say(f"embedded PostgreSQL: {postgres.pgdata}")
        if redis:
            if settings.redis_url:
                env["DALSTON_REDIS_URL"] = settings.redis_url
            else:
                server = EmbeddedRedis(data_dir)
                stack.callback(server.stop)
                stack.callback(say, "stopping embedded Redis")
                env["DALSTON_REDIS_URL"] = server.start()
                embedded.append(server)
                say(f"embedded Redis: {server.url} (data in {server.dir})")
        if watch and embedded:
            watchdog = Watchdog(embedded, say)
            watchdog.start()
            stack.callback(watchdog.stop)  # first on exit: stopping the servers is no crash
        yield env


def _use_env(env: dict[str, str]) -> None:
    """Make this process (not only the children) see the resolved settings."""
    from shared import db

    os.environ.update(env)
    get_settings.cache_clear()
    db.get_sessionmaker.cache_clear()
    db.get_engine.cache_clear()


def migrate_and_seed(settings: Settings, env: dict[str, str]) -> str:
    """Run migrations and make sure an admin key exists. Returns a line telling where the key is."""
    from shared import db
    from shared.bootstrap import migrate, seed_admin_key

    _use_env(env)
    migrate(env["DALSTON_DATABASE_URL"])

    async def seed() -> str | None:
        try:
            return await seed_admin_key(settings.api_key)
        finally:
            await db.get_engine().dispose()

    new_key = asyncio.run(seed())
    db.get_sessionmaker.cache_clear()
    db.get_engine.cache_clear()

    key_file = settings.data_dir.resolve() / "admin_api_key"
    if settings.api_key:
        return "API key: the value of DALSTON_API_KEY"
    if new_key:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key + "\n")
        return f"API key (admin, shown once): {new_key}  (saved to {key_file})"
    if key_file.exists():
        return f"API key: in {key_file}"
    return "API key: an admin key already exists; set DALSTON_API_KEY to add one you know"


def migrate_command(settings: Settings) -> int:
    with infrastructure(settings, redis=False) as env:
        say(migrate_and_seed(settings, env))
    return 0


def up_command(settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            return  # already shutting down; the grace period then SIGKILL bound the wait
        say(f"got {signal.Signals(signum).name}, stopping")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    # Only the checkout's own console is built; a DALSTON_CONSOLE_DIR elsewhere is the operator's build.
    if settings.console_dir.resolve() == (CONSOLE_DIR / "dist").resolve():
        build_console(say)
        if stop.is_set():
            return 0

    with infrastructure(settings, watch=True) as env:
        key_hint = migrate_and_seed(settings, env)
        if stop.is_set():
            return 0
        env |= {"DALSTON_HOST": settings.host, "DALSTON_PORT": str(settings.port)}
        engines = configured_engines(settings)
        for engine_id in not_installed(engines):
            # It would crash-loop; jobs that need it fail with a clear error instead.
            engines.remove(engine_id)
            info = catalogue.engine(engine_id)
            say(f"{info.stage} engine {engine_id} is off: install the `{info.extra}` extra (see README) to enable it")
        fleet = Fleet(default_services(settings.port, engines), env)
        fleet.start()
        try:
            _wait_until_stopped(settings, fleet, key_hint, stop)
        finally:
            say("stopping services")
            fleet.stop()
    return 0


def _wait_until_stopped(settings: Settings, fleet: Fleet, key_hint: str, stop: threading.Event) -> None:
    probe_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    health = f"http://{probe_host}:{settings.port}/health"
    started = time.monotonic()
    announced = False
    while not stop.wait(0.5):
        if announced:
            continue
        try:
            announced = httpx.get(health, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            pass
        if announced:
            url = f"http://{probe_host}:{settings.port}"
            say(f"Dalston is up: {url}")
            say(f"API docs: {url}/docs")
            say(f"console: {url}/console")
            say(key_hint)
            say("Ctrl-C stops everything")
        elif time.monotonic() - started > HEALTH_TIMEOUT_S:
            say(f"warning: gateway has not answered {health} after {HEALTH_TIMEOUT_S:.0f}s; still waiting")
            started = time.monotonic()


class _SettingsOverrides(TypedDict, total=False):
    host: str
    port: int
    data_dir: Path


def resolve_settings(*, host: str | None = None, port: int | None = None, data_dir: Path | None = None) -> Settings:
    """Environment (DALSTON_*, .env) first, command-line flags over it."""
    overrides: _SettingsOverrides = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)
