"""A gateway (and optionally one realtime worker) as real processes, for the limits tests.

`python -m gateway` under uvicorn, as operators run it, so WebSocket frame limits, body
limits and rate limits are exercised through the real server. Redis index 13 keeps these
processes apart from the other suites' fleets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import redis
from support import REDIS_URL, create_database, drop_database, free_port

from dalston.fleet import Fleet, gateway_service, realtime_worker_service, wait_http
from shared.bootstrap import generate_key, hash_key

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 13
ADMIN_KEY = "dk_limits_test_admin_key_0123456789abcdef"


@dataclass
class Gateway:
    base_url: str
    ws_url: str
    database_url: str
    redis_url: str
    fleet: Fleet

    async def add_key(self, scopes: tuple[str, ...] = ("jobs:read", "jobs:write", "realtime", "webhooks")) -> str:
        """A key of a new tenant."""
        key, tenant_id = generate_key(), uuid.uuid4()
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, f"tenant-{tenant_id.hex[:8]}")
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ($1, $2, 'test', $3, $4, $5)",
                uuid.uuid4(), tenant_id, key[:10], hash_key(key), list(scopes),
            )  # fmt: skip
        finally:
            await conn.close()
        return key

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def alive(self) -> None:
        """The service keeps serving: an authenticated read succeeds."""
        with self.client() as client:
            response = client.get("/v1/audio/transcriptions?limit=1")
            assert response.status_code == 200, response.text


def start_gateway(data_dir: Path, env: dict[str, str], *, worker: bool) -> Iterator[Gateway]:
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    full_env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(data_dir),
        "DALSTON_API_KEY": ADMIN_KEY,
        "DALSTON_WHISPER_CPU_THREADS": "1",
        "DALSTON_REALTIME_HEARTBEAT_INTERVAL_S": "1",
        **env,
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **full_env}, cwd=ROOT, check=True)
    services = [gateway_service(port)]
    if worker:
        services.append(realtime_worker_service(free_port(), "realtime-worker", "--worker-id", "limits-worker"))
    fleet = Fleet(services, full_env, cwd=ROOT, output=sys.stderr, autorestart=False)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        gateway = Gateway(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", database_url, redis_url, fleet)
        if worker:
            deadline = time.monotonic() + 180
            while True:
                with gateway.client() as client:
                    status = client.get("/v1/realtime/status").json()
                if any(w["status"] == "ready" for w in status.get("workers", [])):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the realtime worker never became ready: {status}")
                time.sleep(0.5)
        yield gateway
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()
