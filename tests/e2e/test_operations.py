"""Operating the fleet: every process's Prometheus metrics move with real work, log lines
are JSON carrying the job and task ids, and an engine stopped with SIGTERM mid-task either
hands its task to another instance at once or finishes it first, the task completing once.

The fleet runs the batch path only (gateway, orchestrator, prepare, two faster-whisper
instances, merge, session router), each with a metrics port of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis
from harness import API_KEY, submit, wait_for
from support import FIXTURES, REDIS_URL, Samples, create_database, drop_database, free_port, sample, scrape

from dalston.fleet import (
    Fleet,
    engine_service,
    gateway_service,
    orchestrator_service,
    session_router_service,
    wait_http,
    with_env,
)
from shared import keys

REDIS_DB = 11  # the e2e modules run one after another; each fleet flushes its database
FW_HANDS_BACK = "engine-faster-whisper-a"  # drain timeout 0: hands its task back on SIGTERM
FW_FINISHES = "engine-faster-whisper-b"  # drain timeout long: finishes its task first
METERED = ("orchestrator", "engine-prepare", FW_HANDS_BACK, FW_FINISHES, "engine-merge", "session-router")


@dataclass
class OpsFleet:
    fleet: Fleet
    base_url: str
    redis_url: str
    metrics_ports: dict[str, int]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60.0)

    def scrape(self, name: str) -> Samples:
        port = self.metrics_ports.get(name)
        return scrape(self.base_url + "/metrics" if port is None else f"http://127.0.0.1:{port}/metrics")


@pytest.fixture(scope="module")
def ops(tmp_path_factory) -> Iterator[OpsFleet]:
    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    ports = {name: free_port() for name in METERED}
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("fleet-ops")),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_PORT": str(port),
        "DALSTON_WHISPER_CPU_THREADS": "2",
        "DALSTON_LOG_JSON": "true",
        "DALSTON_METRICS_REFRESH_INTERVAL_S": "0.5",
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, check=True)
    services = [
        gateway_service(port),
        orchestrator_service(),
        engine_service("prepare"),
        with_env(engine_service("faster-whisper", name=FW_HANDS_BACK), DALSTON_ENGINE_DRAIN_TIMEOUT_S="0"),
        with_env(engine_service("faster-whisper", name=FW_FINISHES), DALSTON_ENGINE_DRAIN_TIMEOUT_S="300"),
        engine_service("merge"),
        session_router_service(),
    ]
    services = [with_env(s, DALSTON_METRICS_PORT=str(ports[s.name])) if s.name in ports else s for s in services]
    # A long grace: the finishing engine's stop is timed by its task, not by the fleet.
    fleet = Fleet(services, env, output=sys.stderr, grace_s=300)
    fleet.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        for metrics_port in ports.values():
            wait_http(f"http://127.0.0.1:{metrics_port}/metrics", timeout=120)
        yield OpsFleet(fleet, f"http://127.0.0.1:{port}", redis_url, ports)
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()


def completions(ops: OpsFleet, job_id: str) -> dict[str, int]:
    """task.completed events on the events stream for each of the job's tasks."""
    counts: dict[str, int] = {}
    client = redis.Redis.from_url(ops.redis_url, decode_responses=True)
    entries = cast("list[tuple[str, dict[str, str]]]", client.xrange(keys.EVENTS_STREAM))
    for _id, fields in entries:
        event = json.loads(fields["data"])
        if event.get("job_id") == job_id and event["type"] == "task.completed":
            counts[event["task_id"]] = counts.get(event["task_id"], 0) + 1
    return counts


def summed(ops: OpsFleet, names: tuple[str, ...], series: str, **labels: str) -> float:
    """`series` added up over the processes `names`."""
    return sum(sample(ops.scrape(n), series, **labels) or 0.0 for n in names)


def wait_busy(ops: OpsFleet, name: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while sample(ops.scrape(name), "dalston_engine_busy", engine="faster-whisper") != 1.0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} never started a task: {ops.fleet.tail(name, 20)}")
        time.sleep(0.1)


def test_metrics_move_with_a_job(ops: OpsFleet) -> None:
    with ops.client() as client:
        job = submit(client, FIXTURES / "short_en.wav").json()
        assert wait_for(client, job["id"])["status"] == "completed"
    r = redis.Redis.from_url(ops.redis_url)
    r.xadd(keys.EVENTS_STREAM, {"data": json.dumps({"type": "not-an-event"})})  # dead-lettered
    time.sleep(2)  # two gauge refreshes

    gateway = ops.scrape("gateway")
    assert sample(gateway, "dalston_gateway_jobs_submitted_total", model="tiny.en") == 1.0

    orchestrator = ops.scrape("orchestrator")
    assert sample(orchestrator, "dalston_jobs_finished_total", outcome="completed") == 1.0
    assert sample(orchestrator, "dalston_events_dead_lettered_total") == 1.0
    assert sample(orchestrator, "dalston_dlq_size") == 1.0
    for engine in ("prepare", "faster-whisper", "merge"):
        assert sample(orchestrator, "dalston_stream_length", engine=engine) == 1.0  # acked entries stay
        assert sample(orchestrator, "dalston_stream_pending", engine=engine) == 0.0
        assert sample(orchestrator, "dalston_stream_lag", engine=engine) == 0.0
    assert sample(orchestrator, "dalston_stream_consumers", engine="faster-whisper") == 2.0

    for name, engine in (("engine-prepare", "prepare"), ("engine-merge", "merge")):
        samples = ops.scrape(name)
        assert sample(samples, "dalston_engine_tasks_total", engine=engine, outcome="completed") == 1.0
        assert sample(samples, "dalston_engine_task_duration_seconds_count", engine=engine) == 1.0
        assert sample(samples, "dalston_engine_queue_wait_seconds_count", engine=engine) == 1.0
        assert sample(samples, "dalston_engine_model_load_seconds", engine=engine) is not None
        assert sample(samples, "dalston_engine_busy", engine=engine) == 0.0
    whisper = (FW_HANDS_BACK, FW_FINISHES)
    assert summed(ops, whisper, "dalston_engine_tasks_total", engine="faster-whisper", outcome="completed") == 1.0

    router = ops.scrape("session-router")
    assert sample(router, "dalston_realtime_pool_capacity") == 0.0
    assert sample(router, "dalston_realtime_pool_workers", status="ready") == 0.0


def test_log_lines_are_json_with_job_and_task_ids(ops: OpsFleet) -> None:
    with ops.client() as client:
        job_id = submit(client, FIXTURES / "short_en.wav").json()["id"]
        assert wait_for(client, job_id)["status"] == "completed"
    lines = [json.loads(line) for line in ops.fleet.tail("engine-prepare", 500)]
    task_lines = [line for line in lines if line.get("job_id") == job_id]
    assert {"task_started", "task_completed"} <= {line["event"] for line in task_lines}
    assert all(line["task_id"] and line["service"] == "engine-prepare" for line in task_lines)
    handled = [json.loads(line) for line in ops.fleet.tail("orchestrator", 500) if job_id in line]
    assert any(line["event"] == "task_completed" and line["job_id"] == job_id and line["task_id"] for line in handled)


def test_sigterm_mid_task_hands_it_back(ops: OpsFleet) -> None:
    """Both instances busy with a job each: the one told to stop goes at once, and the other
    claims its task as soon as it is free (one task at a time), not after a reclaim timeout;
    every task completes once."""
    taker_before = ops.scrape(FW_FINISHES)
    with ops.client() as client:
        job_ids = [submit(client, FIXTURES / "long_en.wav").json()["id"] for _ in range(2)]
        wait_busy(ops, FW_HANDS_BACK)
        wait_busy(ops, FW_FINISHES)
        began = time.monotonic()
        code = ops.fleet.kill(FW_HANDS_BACK, signal.SIGTERM)
        exited_s = time.monotonic() - began
        jobs = [wait_for(client, job_id, timeout=300) for job_id in job_ids]
        done_s = time.monotonic() - began
    print(f"\nhand-back: exited {exited_s:.2f} s after SIGTERM; both jobs completed {done_s:.1f} s after it")
    assert code == 0
    assert all(job["status"] == "completed" and job["transcript"]["text"] for job in jobs)
    assert all(set(completions(ops, job_id).values()) == {1} for job_id in job_ids)
    taker = ops.scrape(FW_FINISHES)

    def increase(series: str, **labels: str) -> float:
        return (sample(taker, series, **labels) or 0.0) - (sample(taker_before, series, **labels) or 0.0)

    assert increase("dalston_engine_tasks_reclaimed_total", engine="faster-whisper", reason="dead") == 1.0
    assert increase("dalston_engine_tasks_total", engine="faster-whisper", outcome="completed") == 2.0
    assert any('"task_handed_back"' in line for line in ops.fleet.tail(FW_HANDS_BACK, 50))


def test_sigterm_mid_task_finishes_it_first(ops: OpsFleet) -> None:
    """With a drain timeout longer than the task, the engine finishes it, then exits."""
    assert not ops.fleet.running(FW_HANDS_BACK)  # the previous test stopped it: the task lands here
    with ops.client() as client:
        job_id = submit(client, FIXTURES / "long_en.wav").json()["id"]
        wait_busy(ops, FW_FINISHES)
        began = time.monotonic()
        code = ops.fleet.kill(FW_FINISHES, signal.SIGTERM)
        exited_s = time.monotonic() - began
        job = wait_for(client, job_id, timeout=300)
    print(f"\nfinish-first: exited {exited_s:.1f} s after SIGTERM, its task done")
    assert code == 0
    assert job["status"] == "completed" and job["transcript"]["text"]
    assert set(completions(ops, job_id).values()) == {1}
    assert any('"task_completed"' in line and job_id in line for line in ops.fleet.tail(FW_FINISHES, 50))


def slow_upload(
    path: Path, started: threading.Event, pieces: int = 12, pause_s: float = 0.25
) -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart upload of `path` whose body trickles in `pieces`; `started` is set once
    a quarter of it is sent."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    data = path.read_bytes()
    size = -(-len(data) // pieces)

    def body() -> Iterator[bytes]:
        yield head
        for i in range(pieces):
            if i == pieces // 4:
                started.set()
            yield data[i * size : (i + 1) * size]
            time.sleep(pause_s)
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(data) + len(tail)),
    }
    return body(), headers


def test_gateway_finishes_an_upload_in_flight(ops: OpsFleet) -> None:
    """SIGTERM while an upload trickles in: the gateway takes no new connections but
    finishes the upload (201), then exits; the job runs once it is back."""
    ops.fleet.restart(FW_FINISHES)  # the drain tests stopped both transcribers
    started = threading.Event()
    body, headers = slow_upload(FIXTURES / "short_en.wav", started)
    stopped: list[tuple[int | None, float]] = []

    def stop_gateway() -> None:
        started.wait(30)
        began = time.monotonic()
        stopped.append((ops.fleet.kill("gateway", signal.SIGTERM), began))

    stopper = threading.Thread(target=stop_gateway)
    stopper.start()
    with ops.client() as client:
        response = client.post("/v1/audio/transcriptions", content=body, headers=headers)
        answered = time.monotonic()
    stopper.join(60)
    [(code, signalled)] = stopped
    print(f"\ngateway drain: the upload finished {answered - signalled:.2f} s after SIGTERM")
    assert response.status_code == 201, response.text
    # uvicorn raises the signal again once its graceful shutdown is over; SIGKILL (-9)
    # would mean the fleet had to kill it.
    assert code == -signal.SIGTERM
    ops.fleet.restart("gateway")
    wait_http(ops.base_url + "/health", timeout=60)
    with ops.client() as client:
        assert wait_for(client, response.json()["id"])["status"] == "completed"
