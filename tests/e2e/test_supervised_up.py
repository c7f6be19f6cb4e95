"""`dalston up` keeps its embedded Redis and PostgreSQL alive: each is SIGKILLed with ten
jobs in flight, restarted on its data, and every job completes; a prober that lists, reads
and submits all along never sees a 500 (a 503 with Retry-After while a server is down).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import FIXTURES, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AUDIO = (FIXTURES / "short_en.wav").read_bytes()
TERMINAL = ("completed", "failed", "cancelled")


class Up:
    """`python -m dalston.cli up` as a user runs it, its output collected line by line."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DALSTON_")}
        env |= {
            "DALSTON_CONSOLE_DIR": str(data_dir.parent / "no-console"),  # not built here
            "DALSTON_RECONCILE_INTERVAL_S": "5",
            "DALSTON_WHISPER_CPU_THREADS": "1",
        }
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dalston.cli", "up", "-p", str(port), "--data-dir", str(data_dir)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            assert self.proc.poll() is None, "dalston up exited:\n" + "\n".join(self.lines[-80:])
            assert time.monotonic() < deadline, f"never said {text!r}:\n" + "\n".join(self.lines[-80:])
            time.sleep(0.1)

    def client(self) -> httpx.Client:
        key = (self.data_dir / "admin_api_key").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


class Prober:
    """Lists and reads every 0.25 s and submits every second, records every status. It keeps at
    most PENDING of its own jobs unfinished, so that on a slow machine its jobs do not queue
    ahead of the ones under test, except while a server is down (the answer is then a 503)."""

    PENDING = 3

    def __init__(self, up: Up, job_id: str) -> None:
        self.up, self.job_id = up, job_id
        self.codes: Counter[tuple[str, int]] = Counter()
        self.bad: list[str] = []
        self.submitted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _record(self, name: str, response: httpx.Response) -> None:
        self.codes[(name, response.status_code)] += 1
        if response.status_code >= 500 and not (response.status_code == 503 and response.headers.get("retry-after")):
            self.bad.append(f"{name}: {response.status_code} {response.text[:300]}")

    def _run(self) -> None:
        with self.up.client() as client:
            tick = 0
            pending: list[str] = []
            while not self._stop.wait(0.25):
                self._record("list", client.get("/v1/audio/transcriptions?limit=5"))
                read = client.get(f"/v1/audio/transcriptions/{pending[0] if pending else self.job_id}")
                self._record("get", read)
                if pending and read.status_code == 200 and read.json()["status"] in TERMINAL:
                    pending.pop(0)
                tick += 1
                if tick % 4 == 0 and (len(pending) < self.PENDING or read.status_code == 503):
                    response = client.post("/v1/audio/transcriptions", files={"file": ("p.wav", AUDIO)})
                    self._record("submit", response)
                    if response.status_code == 201:
                        self.submitted.append(response.json()["id"])
                        pending.append(response.json()["id"])


def _submit_many(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = client.post("/v1/audio/transcriptions", files={"file": ("j.wav", AUDIO)})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _wait_all(client: httpx.Client, ids: list[str], timeout: float = 420) -> dict[str, str]:
    """Final statuses; a 503 while a server restarts is waited out like a running job."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while True:
        for job_id in ids:
            if statuses.get(job_id) in TERMINAL:
                continue
            response = client.get(f"/v1/audio/transcriptions/{job_id}")
            if response.status_code == 200:
                statuses[job_id] = response.json()["status"]
        if all(statuses.get(j) in TERMINAL for j in ids):
            return statuses
        assert time.monotonic() < deadline, f"jobs still running after {timeout}s: {statuses}"
        time.sleep(0.5)


def _pid(pidfile: Path) -> int:
    return int(pidfile.read_text().split()[0])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's own temp root: as root, PostgreSQL runs as another user, and every
    pytest run on the machine makes that root private (0700) again."""
    base = Path(tempfile.mkdtemp(prefix="dalston-up-test-"))
    base.chmod(0o755)
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


def test_killed_embedded_servers_are_restarted_and_every_job_completes(data_dir: Path) -> None:
    up = Up(data_dir, free_port())
    prober: Prober | None = None
    try:
        up.wait_for_line("Dalston is up")
        with up.client() as client:
            warm = _submit_many(client, 1)
            assert _wait_all(client, warm) == {warm[0]: "completed"}  # every engine has loaded
            prober = Prober(up, warm[0])
            prober.start()

            redis_jobs = _submit_many(client, 10)
            time.sleep(1.0)
            os.kill(_pid(up.data_dir / "redis" / "redis.pid"), signal.SIGKILL)
            back = up.wait_for_line("embedded Redis is back")
            assert _wait_all(client, redis_jobs) == dict.fromkeys(redis_jobs, "completed")

            postgres_jobs = _submit_many(client, 10)
            time.sleep(1.0)
            os.kill(_pid(up.data_dir / "postgres" / "postmaster.pid"), signal.SIGKILL)
            back += "\n" + up.wait_for_line("embedded PostgreSQL is back")
            assert _wait_all(client, postgres_jobs) == dict.fromkeys(postgres_jobs, "completed")

            prober.stop()
            probed = _wait_all(client, prober.submitted)
            assert set(probed.values()) == {"completed"}, probed
        print(f"\n{back}\nprober: {dict(prober.codes)}; {len(prober.submitted)} probe jobs completed")
        assert any("embedded Redis died" in line for line in up.lines)
        assert any("embedded PostgreSQL died" in line for line in up.lines)
        assert not prober.bad, prober.bad
        assert {code for _, code in prober.codes} <= {200, 201, 503}, prober.codes
    finally:
        if prober is not None:
            prober.stop()
        up.proc.send_signal(signal.SIGTERM)
        code = up.proc.wait(120)
    assert code == 0, "\n".join(up.lines[-80:])
