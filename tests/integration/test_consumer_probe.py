"""The container probe of stream consumers (`python -m shared.consumer_probe`), run as the
compose healthchecks and Kubernetes probes run it, against a real Redis."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support import free_port

from shared import keys, streams

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()


def probe(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DALSTON_")} | {"DALSTON_REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "shared.consumer_probe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def flushed(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


def beat(redis_url: str, group: str, consumer: str) -> None:
    """The liveness key a live consumer keeps, written by the real shared.streams code."""

    async def run() -> None:
        client = streams.connect(redis_url)
        try:
            await streams.Liveness(client, group, consumer, ttl_s=30).beat()
        finally:
            await client.aclose()

    asyncio.run(run())


def test_passes_while_the_consumer_keeps_its_liveness_key(flushed: str) -> None:
    beat(flushed, keys.ENGINE_GROUP, f"faster-whisper-{HOST}-4242")
    result = probe(flushed, keys.ENGINE_GROUP, "faster-whisper", "--pid", "4242")
    assert result.returncode == 0, result.stderr


def test_fails_without_the_key(flushed: str) -> None:
    result = probe(flushed, keys.ENGINE_GROUP, "faster-whisper", "--pid", "4242")
    assert result.returncode == 1
    assert f"no live faster-whisper consumer of {keys.ENGINE_GROUP} on host {HOST}" in result.stderr


def test_only_this_containers_own_consumer_counts(flushed: str) -> None:
    beat(flushed, keys.ENGINE_GROUP, "faster-whisper-some-other-pod-4242")  # another host
    beat(flushed, keys.ENGINE_GROUP, f"merge-{HOST}-4242")  # another engine
    beat(flushed, keys.ORCHESTRATOR_GROUP, f"faster-whisper-{HOST}-4242")  # another group
    beat(flushed, keys.ENGINE_GROUP, f"faster-whisper-{HOST}-4243")  # another process
    assert probe(flushed, keys.ENGINE_GROUP, "faster-whisper", "--pid", "4242").returncode == 1
    assert probe(flushed, keys.ENGINE_GROUP, "faster-whisper", "--pid", "4242", "--host", "some-other-pod").returncode == 0


def test_finds_the_process_among_those_the_container_sees(flushed: str) -> None:
    """Without --pid, the probe tries every pid in /proc, as it does beside the real process."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            consumer = f"orchestrator-{HOST}-{proc.pid}"
            assert probe(flushed, keys.ORCHESTRATOR_GROUP, "orchestrator").returncode == 1
            beat(flushed, keys.ORCHESTRATOR_GROUP, consumer)
            result = probe(flushed, keys.ORCHESTRATOR_GROUP, "orchestrator")
            assert result.returncode == 0, result.stderr
        finally:
            proc.kill()


def test_redis_unreachable_is_not_the_process_s_fault() -> None:
    result = probe(f"redis://127.0.0.1:{free_port()}/0", keys.ENGINE_GROUP, "faster-whisper")
    assert result.returncode == 0
    assert "Redis unreachable" in result.stderr


@pytest.mark.parametrize(
    ("path", "prefix"), [("engines/runner.py", "{engine.engine_id}"), ("orchestrator/service.py", "orchestrator")]
)
def test_consumers_are_named_as_the_probe_expects(path: str, prefix: str) -> None:
    """The probe rebuilds the names the services give their consumers: `<prefix>-<hostname>-<pid>`."""
    source = (ROOT / path).read_text()
    pattern = re.escape(f'f"{prefix}-{{socket.gethostname()}}-{{os.getpid()}}"')
    assert re.search(pattern, source), (
        f"{path} no longer names its consumer {prefix}-<hostname>-<pid>: update shared/consumer_probe.py"
    )
