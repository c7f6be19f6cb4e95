"""`dalston up` keeps its embedded PostgreSQL and Redis running, like the services.

A thread checks each server twice a second. One that died is restarted on the same data
and address (the services keep their URLs and reconnect by themselves; meanwhile the API
answers 503), with backoff between failed attempts; every death, restart and failure is
said on `dalston up`'s output. After `GIVE_UP_AFTER` failed attempts in a row it says,
once, that the server cannot come back, where its log is and what the API does meanwhile,
and keeps trying at the longest backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHECK_INTERVAL_S = 0.5
BACKOFF_MAX_S = 30.0
GIVE_UP_AFTER = 5


class Server(Protocol):
    name: str

    @property
    def log_path(self) -> Path: ...

    def alive(self) -> bool: ...

    def restart(self) -> None: ...


@dataclass
class _Watched:
    server: Server
    died_at: float | None = None
    failures: int = 0
    retry_at: float = 0.0


class Watchdog:
    """Restart `servers` when they die, saying so through `say`, until `stop()`."""

    def __init__(self, servers: Sequence[Server], say: Callable[[str], None]) -> None:
        self._watched = [_Watched(server) for server in servers]
        self._say = say
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="embedded-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the servers are stopped on purpose)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_INTERVAL_S):
            for watched in self._watched:
                if self._stopping.is_set():
                    return
                self._check(watched)

    def _check(self, watched: _Watched) -> None:
        server = watched.server
        now = time.monotonic()
        if watched.died_at is None:
            if server.alive():
                return
            watched.died_at = now
            self._say(f"embedded {server.name} died; restarting it on the same data")
        if now < watched.retry_at:
            return
        try:
            server.restart()
        except Exception as exc:
            watched.failures += 1
            delay = min(BACKOFF_MAX_S, 0.5 * 2**watched.failures)
            watched.retry_at = time.monotonic() + delay
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            self._say(f"embedded {server.name} did not restart ({reason}); retrying in {delay:.1f}s")
            if watched.failures == GIVE_UP_AFTER:
                self._say(
                    f"embedded {server.name} cannot come back after {GIVE_UP_AFTER} attempts: see {server.log_path}. "
                    "The API answers 503 until it does; dalston keeps trying every "
                    f"{BACKOFF_MAX_S:.0f}s (Ctrl-C stops everything)"
                )
            return
        self._say(f"embedded {server.name} is back after {time.monotonic() - watched.died_at:.1f}s")
        watched.died_at = None
        watched.failures = 0
        watched.retry_at = 0.0
