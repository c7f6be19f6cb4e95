"""Run Dalston's services as local child processes: start, stream logs, restart, stop.

Used by `dalston up`, by end-to-end tests and by the bench scripts:

    fleet = Fleet(default_services(port=8123), env={"DALSTON_DATABASE_URL": ..., "DALSTON_REDIS_URL": ...})
    with fleet:
        wait_http("http://127.0.0.1:8123/health")
        fleet.kill("engine-faster-whisper")            # SIGKILL; not restarted
        fleet.add(engine_service("faster-whisper", name="engine-faster-whisper-2"))
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import httpx

from shared import catalogue
from shared.settings import Settings

# The engines `dalston up` and compose start without configuration (the stage catalogue's autostart).
ENGINE_IDS: tuple[str, ...] = tuple(e.id for e in catalogue.ENGINES.values() if e.autostart)
# Log prefixes line up on the longest default service name.
NAME_WIDTH = max(len(f"engine-{e}") for e in ENGINE_IDS)
BACKOFF_MAX_S = 30.0
# A child that stayed up this long is healthy again: its next crash restarts it quickly.
STABLE_AFTER_S = 30.0


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def with_env(service: Service, **env: str) -> Service:
    """`service` with `env` added to its own environment (e.g. a metrics port per instance)."""
    return replace(service, env={**service.env, **env})


def gateway_service(port: int) -> Service:
    return Service("gateway", [sys.executable, "-m", "gateway", "--port", str(port)])


def orchestrator_service() -> Service:
    return Service("orchestrator", [sys.executable, "-m", "orchestrator"])


def engine_service(engine_id: str, name: str | None = None) -> Service:
    return Service(name or f"engine-{engine_id}", [sys.executable, "-m", "engines.runner", "--engine", engine_id])


def session_router_service() -> Service:
    return Service("session-router", [sys.executable, "-m", "session_router"])


def realtime_worker_service(port: int, name: str = "realtime-worker", *extra: str) -> Service:
    return Service(name, [sys.executable, "-m", "realtime_worker", "--port", str(port), *extra])


def default_services(port: int, engines: Sequence[str] = ENGINE_IDS, realtime_port: int | None = None) -> list[Service]:
    """Every service; the realtime worker listens on `realtime_port` (default port + 1)."""
    return [
        gateway_service(port),
        orchestrator_service(),
        *(engine_service(e) for e in engines),
        session_router_service(),
        realtime_worker_service(realtime_port or port + 1),
    ]


def configured_engines(settings: Settings) -> list[str]:
    """The engines to run: the autostart ones plus those configured — engines whose weights
    are set (pyannote-4.0 with DALSTON_PYANNOTE_MODEL, phoneme-align with DALSTON_ALIGN_MODEL)
    and any named in DALSTON_STAGE_ENGINES (e.g. whisperx-full)."""
    configured = [e.id for e in catalogue.ENGINES.values() if e.weights_setting and e.unconfigured(settings) is None]
    return list(dict.fromkeys([*ENGINE_IDS, *configured, *settings.stage_engines.values()]))


def not_installed(engine_ids: Sequence[str]) -> list[str]:
    """Those of `engine_ids` whose extra is not installed here (they would crash-loop)."""
    return [e for e in engine_ids if not catalogue.engine(e).installed()]


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200 (e.g. the gateway's /health)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.2)


class _Child:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.proc: subprocess.Popen[str] | None = None
        self.started_at = 0.0
        self.wanted = True  # False after kill()/stop(): an exit is then expected, not a crash
        self.crashes = 0
        self.restart_at: float | None = None
        self.lines: deque[str] = deque(maxlen=500)


class Fleet:
    """Supervise a set of services: each child's output is streamed line by line with its
    name as prefix, and a child that dies unexpectedly is restarted with backoff."""

    def __init__(
        self,
        services: Iterable[Service] = (),
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        output: TextIO | None = sys.stdout,
        autorestart: bool = True,
        grace_s: float = 10.0,
    ) -> None:
        self.env = dict(env or {})
        self.cwd = cwd
        self.output = output
        self.autorestart = autorestart
        self.grace_s = grace_s
        self._children: dict[str, _Child] = {}
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        for service in services:
            self._children[service.name] = _Child(service)

    # -- public API ---------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._children)

    def start(self) -> None:
        """Start every service and the supervisor thread."""
        self._stopping.clear()
        with self._lock:
            for child in self._children.values():
                child.wanted = True
                self._spawn(child)
        self._monitor = threading.Thread(target=self._supervise, name="fleet-supervisor", daemon=True)
        self._monitor.start()

    def add(self, service: Service) -> None:
        """Add a service to a running fleet and start it (e.g. a second engine instance)."""
        with self._lock:
            if service.name in self._children:
                raise ValueError(f"a service named {service.name!r} already exists")
            child = self._children[service.name] = _Child(service)
            self._spawn(child)

    def stop(self) -> None:
        """SIGTERM every child, SIGKILL those still alive after the grace period."""
        self._stopping.set()
        with self._lock:
            children = list(self._children.values())
            for child in children:
                child.wanted = False
                child.restart_at = None
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in children:
            self._reap(child, deadline)
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Signal one service and wait for it to exit (SIGKILL after the grace period).
        It stays down until restart(name). Returns its exit code."""
        with self._lock:
            child = self._children[name]
            child.wanted = False
            child.restart_at = None
            self._signal(child, sig)
        self._reap(child, time.monotonic() + self.grace_s)
        return child.proc.returncode if child.proc else None

    def restart(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL) and start it again."""
        self.kill(name, signal.SIGTERM)
        with self._lock:
            child = self._children[name]
            child.wanted = True
            child.crashes = 0
            self._spawn(child)

    def pid(self, name: str) -> int | None:
        proc = self._children[name].proc
        return proc.pid if proc and proc.poll() is None else None

    def running(self, name: str) -> bool:
        return self.pid(name) is not None

    def tail(self, name: str, lines: int = 50) -> list[str]:
        """The last output lines of a service (for test failure messages)."""
        return list(self._children[name].lines)[-lines:]

    def log(self, message: str) -> None:
        self._write("dalston", message)

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        env = {**os.environ, **self.env, **child.service.env, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(
            child.service.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # Own process group: Ctrl-C reaches only us, and we stop children in order,
            # grandchildren included.
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        threading.Thread(target=self._pump, args=(child, child.proc), daemon=True).start()

    def _pump(self, child: _Child, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            child.lines.append(line)
            self._write(child.service.name, line)
        proc.stdout.close()

    def _write(self, name: str, line: str) -> None:
        if self.output is None:
            return
        width = max(NAME_WIDTH, *(len(n) for n in self._children))
        with self._write_lock:
            try:
                self.output.write(f"{name:<{width}} | {line}\n")
                self.output.flush()
            except (ValueError, OSError):
                pass  # output closed under us (interpreter shutdown, closed pipe)

    def _signal(self, child: _Child, sig: int) -> None:
        if child.proc is None or child.proc.poll() is not None:
            return
        try:
            os.killpg(child.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, child: _Child, deadline: float) -> None:
        if child.proc is None:
            return
        try:
            child.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._write(child.service.name, f"did not stop within {self.grace_s}s; killing")
            self._signal(child, signal.SIGKILL)
            child.proc.wait()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            now = time.monotonic()
            with self._lock:
                for child in self._children.values():
                    proc = child.proc
                    if not child.wanted or proc is None or self._stopping.is_set():
                        continue
                    if child.restart_at is not None:
                        if now >= child.restart_at:
                            self._spawn(child)
                        continue
                    code = proc.poll()
                    if code is None:
                        continue
                    if not self.autorestart:
                        self._write(child.service.name, f"exited with code {code}")
                        child.wanted = False
                        continue
                    if now - child.started_at > STABLE_AFTER_S:
                        child.crashes = 0
                    delay = min(BACKOFF_MAX_S, 0.5 * 2**child.crashes)
                    child.crashes += 1
                    child.restart_at = now + delay
                    self._write(child.service.name, f"exited with code {code}; restarting in {delay:.1f}s")
