"""Fleet supervision with small stand-in child processes."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Callable

import pytest

from dalston.fleet import NAME_WIDTH, Fleet, Service, default_services

SLEEPER = [sys.executable, "-c", "import os, time; print('ready', os.environ['MARK'], flush=True); time.sleep(60)"]
CRASHER = [sys.executable, "-c", "print('boom', flush=True); raise SystemExit(3)"]
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
]


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_output_is_prefixed_and_env_is_passed() -> None:
    out = io.StringIO()
    with Fleet([Service("one", SLEEPER, env={"MARK": "svc"})], env={"MARK": "fleet"}, output=out) as fleet:
        eventually(lambda: fleet.tail("one") == ["ready svc"])
    assert f"{'one':<{NAME_WIDTH}} | ready svc\n" in out.getvalue()
    assert not fleet.running("one")


def test_crashed_child_is_restarted_with_backoff_but_killed_one_is_not() -> None:
    fleet = Fleet([Service("crash", CRASHER), Service("sleep", SLEEPER, env={"MARK": "x"})], output=None)
    with fleet:
        eventually(lambda: fleet.tail("crash").count("boom") >= 3)
        eventually(lambda: fleet.running("sleep"))
        first = fleet.pid("sleep")
        assert fleet.kill("sleep") == -signal.SIGKILL
        time.sleep(1.0)
        assert not fleet.running("sleep")  # deliberate kills are not restarted
        fleet.restart("sleep")
        eventually(lambda: fleet.running("sleep"))
        assert fleet.pid("sleep") != first


def test_add_starts_another_instance() -> None:
    with Fleet([Service("a", SLEEPER, env={"MARK": "a"})], output=None) as fleet:
        fleet.add(Service("b", SLEEPER, env={"MARK": "b"}))
        eventually(lambda: fleet.tail("b") == ["ready b"])
        assert fleet.names == ["a", "b"]


def test_stop_kills_children_that_ignore_sigterm() -> None:
    out = io.StringIO()
    fleet = Fleet([Service("stubborn", STUBBORN)], output=out, grace_s=0.5)
    fleet.start()
    eventually(lambda: fleet.tail("stubborn") == ["ready"])
    pid = fleet.pid("stubborn")
    fleet.stop()
    # SIGTERM is ignored, so the child is gone only because the grace period ran out and
    # stop() SIGKILLed it (left alone it would sleep on for a minute and then exit by itself).
    assert "did not stop within 0.5s; killing" in out.getvalue()
    assert not fleet.running("stubborn") and pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_default_services_match_entry_points() -> None:
    services = {s.name: s.argv[1:] for s in default_services(port=8123)}
    assert services == {
        "gateway": ["-m", "gateway", "--port", "8123"],
        "orchestrator": ["-m", "orchestrator"],
        "engine-prepare": ["-m", "engines.runner", "--engine", "prepare"],
        "engine-faster-whisper": ["-m", "engines.runner", "--engine", "faster-whisper"],
        "engine-merge": ["-m", "engines.runner", "--engine", "merge"],
        "engine-diarize-default": ["-m", "engines.runner", "--engine", "diarize-default"],
        "engine-pii-presidio": ["-m", "engines.runner", "--engine", "pii-presidio"],
        "engine-audio-redactor": ["-m", "engines.runner", "--engine", "audio-redactor"],
        "session-router": ["-m", "session_router"],
        "realtime-worker": ["-m", "realtime_worker", "--port", "8124"],
    }


def test_configured_engines_follow_their_settings() -> None:
    from dalston.fleet import ENGINE_IDS, configured_engines
    from shared.settings import Settings

    bare = configured_engines(Settings(database_url="postgresql://unused/unused"))
    assert bare == list(ENGINE_IDS)
    assert "llm-cleanup" not in bare and "pyannote-4.0" not in bare
    configured = configured_engines(
        Settings(database_url="postgresql://unused/unused", llm_base_url="http://127.0.0.1:11434/v1", pyannote_model="/w")
    )
    assert configured[: len(ENGINE_IDS)] == list(ENGINE_IDS)
    assert {"llm-cleanup", "pyannote-4.0"} <= set(configured)
