"""Helpers to run the whole fleet (gateway, orchestrator, engines) as local processes on real services."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jiwer
import redis
from support import FIXTURES, REDIS_URL, create_database, drop_database, free_port

from dalston.fleet import Fleet, default_services, wait_http

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "dk_e2e_" + uuid.uuid4().hex
# Redis database indexes of the e2e fleets, apart from the integration tests' ones.
REDIS_DB = {"fs": 8, "s3": 9}


@dataclass
class RunningFleet:
    fleet: Fleet
    base_url: str
    env: dict[str, str]
    data_dir: Path
    backend: str

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(_words(reference), _words(hypothesis))


def reference(name: str) -> str:
    return (FIXTURES / name).read_text().strip()


def submit(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/v1/audio/transcriptions", files={"file": (path.name, f)}, data=fields)


def wait_for(client: httpx.Client, job_id: str, *, timeout: float = 180.0, statuses=("completed", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/audio/transcriptions/{job_id}").json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
        time.sleep(0.25)


def wait_for_stage(client: httpx.Client, job_id: str, name: str, status: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/audio/transcriptions/{job_id}").json()
        stage = next((s for s in job["stages"] if s["name"] == name), None)
        if stage and stage["status"] == status:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"stage {name} of job {job_id} never reached {status}")


def start_fleet(
    backend: str, data_dir: Path, extra_env: dict[str, str], *, redis_db: int | None = None
) -> Iterator[RunningFleet]:
    """`redis_db` overrides the backend's Redis index, for fleets that run beside the default ones."""
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB[backend] if redis_db is None else redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(data_dir),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_PORT": str(port),
        # A SIGKILLed engine's task is reclaimed after this idle time.
        "DALSTON_ENGINE_CLAIM_IDLE_MS": "3000",
        "DALSTON_WHISPER_CPU_THREADS": "2",
        **extra_env,
    }
    # `dalston migrate` is what compose and operators run: use it here too.
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    fleet = Fleet(default_services(port), env, cwd=ROOT, output=sys.stderr)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        yield RunningFleet(fleet, f"http://127.0.0.1:{port}", env, data_dir, backend)
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()
