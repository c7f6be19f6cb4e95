"""A gateway SIGKILLed mid-upload and mid-store leaves a partial temp file and an object
no job owns; after its restart and one storage sweep, neither remains.

The gateway is a real process with its own temp dir (TMPDIR) and filesystem store, so the
test sees exactly what it leaves behind. The mid-store kill is aimed by SIGSTOPping the
gateway the moment its object appears in storage, before it can write the job's row.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from faults import RedisServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from support import create_database, drop_database, free_port

from dalston.fleet import Fleet, gateway_service, wait_http
from orchestrator.service import Orchestrator
from shared.db import Job, async_url
from shared.settings import Settings
from shared.storage import FileStore
from shared.streams import connect

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "dk_leftovers_test_admin_key_0123456789abcdef"


@dataclass
class Gateway:
    url: str
    fleet: Fleet
    scratch: Path
    storage: FileStore
    database_url: str
    redis_url: str

    def pid(self) -> int:
        pid = self.fleet.pid("gateway")
        assert pid is not None
        return pid

    def restart(self) -> None:
        self.fleet.restart("gateway")
        wait_http(f"{self.url}/health", timeout=120)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir, scratch = tmp_path_factory.mktemp("leftovers-data"), tmp_path_factory.mktemp("leftovers-tmp")
    server = RedisServer(tmp_path_factory.mktemp("leftovers-redis"))
    server.start()
    database_url = create_database()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": server.url,
        "DALSTON_DATA_DIR": str(data_dir),
        "DALSTON_API_KEY": ADMIN_KEY,
        "TMPDIR": str(scratch),
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    fleet = Fleet([gateway_service(port)], env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        yield Gateway(f"http://127.0.0.1:{port}", fleet, scratch, FileStore(data_dir / "storage"), database_url, server.url)
    finally:
        fleet.stop()
        server.kill()
        drop_database(database_url)


def _wav(seconds: int, rate: int = 16_000) -> bytes:
    """A silent 16-bit mono WAV (big enough that storing it takes a while)."""
    data = seconds * rate * 2
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", data) + bytes(data)


def _multipart(audio_chunks: Iterator[bytes], boundary: str) -> Iterator[bytes]:
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'.encode()
    yield from audio_chunks
    yield f"\r\n--{boundary}--\r\n".encode()


def _upload_in_thread(gateway: Gateway, body: Iterator[bytes], boundary: str) -> threading.Thread:
    def send() -> None:
        try:
            httpx.post(
                f"{gateway.url}/v1/audio/transcriptions",
                content=body,
                headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=120,
            )
        except httpx.HTTPError:
            pass  # the gateway is killed under it

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.001)


async def _unowned_prefixes(gateway: Gateway) -> list[str]:
    engine = create_async_engine(async_url(gateway.database_url))
    try:
        async with engine.connect() as conn:
            rows = {str(i) for i in await conn.scalars(select(Job.id))}
    finally:
        await engine.dispose()
    return [name for name in gateway.storage.list_children("jobs/") if name not in rows]


async def test_killed_gateway_leaves_nothing_after_restart_and_a_sweep(gateway: Gateway) -> None:
    # 1. Killed mid-upload: the body stalls after 8 MiB, the temp file holds (nearly) them.
    boundary, stall = uuid.uuid4().hex, threading.Event()
    audio = _wav(600)

    def stalled() -> Iterator[bytes]:
        yield audio[: 8 << 20]
        stall.wait(60)

    upload = _upload_in_thread(gateway, _multipart(stalled(), boundary), boundary)
    # Not every byte: the file's write buffer may still hold the tail of the last socket read.
    partial = lambda: [p for p in gateway.scratch.glob("dalston-upload-*/upload") if p.stat().st_size >= 7 << 20]  # noqa: E731
    _wait_for(lambda: bool(partial()), "the upload temp file holds most of the first 8 MiB")
    gateway.fleet.kill("gateway")
    stall.set()
    upload.join(30)
    left_in_tmp = [p.name for p in gateway.scratch.iterdir()]
    assert any(name.startswith("dalston-upload-") for name in left_in_tmp)

    # 2. Killed mid-store: frozen the moment the audio object appears, before the job's row.
    gateway.restart()
    assert [p.name for p in gateway.scratch.iterdir() if p.name.startswith("dalston-")] == []  # swept at start
    pid = gateway.pid()
    stored = gateway.storage.root / "jobs"
    upload = _upload_in_thread(gateway, _multipart(iter([_wav(3000)]), boundary), boundary)
    _wait_for(lambda: any(p.is_file() for p in stored.rglob("*")), "the upload reaches storage", timeout=120)
    os.kill(pid, signal.SIGSTOP)
    gateway.fleet.kill("gateway")  # SIGKILL ends a stopped process too
    upload.join(30)
    orphans = await _unowned_prefixes(gateway)
    assert len(orphans) == 1, orphans  # an object (whole or half-written) that no job owns
    print(f"\nleft behind: temp {left_in_tmp}, objects {[str(p) for p in (stored / orphans[0]).rglob('*')]}")

    # 3. Restart and one sweep: nothing left.
    gateway.restart()
    assert [p.name for p in gateway.scratch.iterdir() if p.name.startswith("dalston-")] == []
    r, engine = connect(gateway.redis_url), create_async_engine(async_url(gateway.database_url))
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        sweeper = Orchestrator(sessionmaker, r, Settings(storage_sweep_grace_s=0), consumer="sweeper", store=gateway.storage)
        assert await sweeper.sweep_storage() >= 1
    finally:
        await r.aclose()
        await engine.dispose()
    assert await _unowned_prefixes(gateway) == []
    assert list(gateway.storage.root.rglob(".tmp-*")) == []
