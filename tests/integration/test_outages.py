"""PostgreSQL or Redis down: the gateway answers 503 with Retry-After in each API's own
shape (WebSockets: an error message, then close 1013), never a 500, and serves again as
soon as the dependency is back. Submissions go on being accepted while Redis is down.

The gateway is a real process; its PostgreSQL is reached through a TCP proxy the test
cuts, and its Redis is a server of the test's own that it kills (tests/faults.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from faults import RedisServer, TcpProxy
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from support import FIXTURES, create_database, drop_database, free_port

from dalston.fleet import Fleet, gateway_service, wait_http
from gateway.waiting import wait_for_job
from shared.db import Job, Tenant, async_url
from shared.streams import connect

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "dk_outage_test_admin_key_0123456789abcdef"
SHORT_WAV = (FIXTURES / "short_en.wav").read_bytes()


@dataclass
class Stack:
    base_url: str
    ws_url: str
    postgres: TcpProxy
    redis: RedisServer
    fleet: Fleet

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    database_url = create_database()
    target = urlsplit(database_url)
    proxy = TcpProxy(target.port or 5432)
    proxy.start()
    proxied = database_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    server = RedisServer(tmp_path_factory.mktemp("outage-redis"))
    server.start()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": proxied,
        "DALSTON_REDIS_URL": server.url,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("outage-data")),
        "DALSTON_API_KEY": ADMIN_KEY,
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    fleet = Fleet([gateway_service(port)], env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        yield Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", proxy, server, fleet)
    finally:
        fleet.stop()
        proxy.cut()
        server.kill()
        drop_database(database_url)


class Prober:
    """Hits list, get and submit every 0.25 s in a thread and counts the statuses."""

    def __init__(self, stack: Stack, job_id: str) -> None:
        self.stack = stack
        self.job_id = job_id
        self.codes: Counter[tuple[str, int]] = Counter()
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with self.stack.client() as client:
            while not self._stop.wait(0.25):
                for name, call in (
                    ("list", lambda: client.get("/v1/audio/transcriptions?limit=5")),
                    ("get", lambda: client.get(f"/v1/audio/transcriptions/{self.job_id}")),
                    ("submit", lambda: client.post("/v1/audio/transcriptions", files={"file": ("s.wav", SHORT_WAV)})),
                ):
                    response = call()
                    self.codes[(name, response.status_code)] += 1
                    if response.status_code >= 500 and response.status_code != 503:
                        self.bodies.append(f"{name}: {response.status_code} {response.text}")


def _assert_unavailable(response: httpx.Response, dependency: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert dependency in response.text, response.text


def _wait_serving(stack: Stack, path: str = "/v1/audio/transcriptions?limit=1") -> None:
    deadline = time.monotonic() + 30
    with stack.client() as client:
        while client.get(path).status_code != 200:
            assert time.monotonic() < deadline, f"{path} still failing 30 s after the dependency came back"
            time.sleep(0.2)


async def _refusal(url: str, headers: dict[str, str]) -> tuple[dict, int | None, str | None]:
    async with websockets.connect(url, additional_headers=headers, open_timeout=30) as ws:
        first = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        return first, ws.close_code, ws.close_reason


def _submit(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/audio/transcriptions", files={"file": ("short.wav", SHORT_WAV)})


async def test_postgres_down_is_503_in_every_shape(stack: Stack) -> None:
    with stack.client() as client:
        created = _submit(client)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        with Prober(stack, job_id) as prober:
            time.sleep(0.6)
            stack.postgres.cut()
            time.sleep(1.5)

            native = client.get("/v1/audio/transcriptions")
            _assert_unavailable(native, "the database")
            assert native.json()["error"]["code"] == "service_unavailable"
            _assert_unavailable(client.get(f"/v1/audio/transcriptions/{job_id}"), "the database")
            _assert_unavailable(_submit(client), "the database")

            elevenlabs = client.get(f"/v1/speech-to-text/transcripts/{job_id}", headers={"xi-api-key": ADMIN_KEY})
            _assert_unavailable(elevenlabs, "the database")
            assert elevenlabs.json()["detail"]["status"] == "service_unavailable"

            openai = client.get("/v1/models")
            _assert_unavailable(openai, "the database")
            error = openai.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "service_unavailable"
            assert "x-should-retry" not in openai.headers  # the SDK retries a 503

            assert client.get("/ready").status_code == 503
            auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
            first, code, reason = await _refusal(f"{stack.ws_url}/v1/audio/transcriptions/stream", auth)
            assert (first["type"], first["code"], code, reason) == ("error", "service_unavailable", 1013, "service_unavailable")
            first, code, _ = await _refusal(f"{stack.ws_url}/v1/speech-to-text/realtime", {"xi-api-key": ADMIN_KEY})
            assert first["message_type"] == "error" and "database" in first["error"] and code == 1013

            time.sleep(1.0)
            stack.postgres.restore()
            _wait_serving(stack)
            time.sleep(0.6)

        assert client.get(f"/v1/audio/transcriptions/{job_id}").status_code == 200
    print(f"\nprober during the PostgreSQL outage: {dict(prober.codes)}")
    assert not prober.bodies, prober.bodies
    assert {code for _, code in prober.codes} <= {200, 201, 503}, prober.codes
    assert prober.codes[("list", 503)] > 0 and prober.codes[("submit", 503)] > 0


async def test_redis_down_is_503_and_submissions_are_accepted(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/v1/realtime/status").status_code == 200
        job_id = _submit(client).json()["id"]

        with Prober(stack, job_id) as prober:
            time.sleep(0.6)
            stack.redis.kill()
            time.sleep(0.6)

            _assert_unavailable(client.get("/v1/realtime/status"), "Redis")
            # PostgreSQL is the source of truth: submissions and reads go on.
            accepted = _submit(client)
            assert accepted.status_code == 201, accepted.text
            assert client.get(f"/v1/audio/transcriptions/{accepted.json()['id']}").json()["status"] == "pending"
            assert client.get("/v1/audio/transcriptions").status_code == 200

            auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
            first, code, reason = await _refusal(f"{stack.ws_url}/v1/audio/transcriptions/stream", auth)
            assert (first["code"], code, reason) == ("service_unavailable", 1013, "service_unavailable")
            assert "Redis" in first["message"]
            first, code, _ = await _refusal(f"{stack.ws_url}/v1/realtime?intent=transcription", auth)
            assert first["type"] == "error" and first["error"]["code"] == "service_unavailable" and code == 1013

            stack.redis.restart()
            _wait_serving(stack, "/v1/realtime/status")
            time.sleep(0.6)

    print(f"\nprober during the Redis outage: {dict(prober.codes)}")
    assert not prober.bodies, prober.bodies
    assert {code for _, code in prober.codes} <= {200, 201}, prober.codes


async def test_a_synchronous_wait_outlives_a_redis_outage(database_url: str, tmp_path: Path) -> None:
    """ElevenLabs and OpenAI requests wait for their job on a Redis notification; with Redis
    gone they go on waiting by reading the row, so an accepted request still gets its answer."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    engine = create_async_engine(async_url(database_url))
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    r = connect(server.url)
    try:
        async with sessionmaker() as db, db.begin():
            tenant = Tenant(name=f"wait-{uuid.uuid4().hex[:8]}")
            db.add(tenant)
            await db.flush()
            job = Job(
                tenant_id=tenant.id, status="running", model="tiny.en", speaker_detection="none", parameters={},
                audio_key="jobs/x/audio/original.wav", audio_bytes=1, audio_duration=1.0, audio_channels=1, audio_sample_rate=16000,
            )  # fmt: skip
            db.add(job)
        waiting = asyncio.create_task(wait_for_job(r, sessionmaker, job.id, timeout=60))
        await asyncio.sleep(0.5)
        server.kill()  # the notification will never come
        await asyncio.sleep(1.5)
        async with sessionmaker() as db, db.begin():
            await db.execute(update(Job).where(Job.id == job.id).values(status="completed"))
        finished = await asyncio.wait_for(waiting, 30)
        assert finished.status == "completed"
    finally:
        await r.aclose()
        await engine.dispose()
        server.kill()
