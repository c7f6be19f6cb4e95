"""Several hosts, one of them cut off mid-task: network namespaces as hosts (tests/netns.py).

Host A runs the data services (a fresh PostgreSQL cluster, Redis, the S3-compatible
server), B the gateway and orchestrator, C and D an engine of each batch kind (prepare,
faster-whisper, merge). Every process reaches the others only by A's and B's addresses,
and audio travels through S3, never a shared directory. Jobs are submitted from the root
namespace; once C's transcriber is busy, C's link goes down: D takes over C's task when
C's liveness key expires, and every job completes with each of its tasks completed once.
When C's link comes back, C's stale outcome for the task it lost is dropped, not reported.

Needs root (network namespaces) and PostgreSQL's server binaries; skips without them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from harness import API_KEY, ROOT, submit, wait_for
from netns import Host, Network, wait_tcp
from support import FIXTURES, Samples, sample, scrape

from dalston.fleet import Fleet, Service, engine_service, gateway_service, orchestrator_service, wait_http, with_env
from shared import keys

ENGINES = ("prepare", "faster-whisper", "merge")
METRICS_PORTS = {"prepare": 9101, "faster-whisper": 9102, "merge": 9103}  # per host: each has its own ports
GATEWAY_PORT = 8000
JOBS = 4
FIXTURE = FIXTURES / "long_en.wav"  # 54 s: a transcription is long enough to cut mid-way


@dataclass
class Cluster:
    net: Network
    fleet: Fleet
    base_url: str
    redis_url: str  # A's Redis, as the root namespace reaches it

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60.0)

    def scrape(self, host: str, engine: str) -> Samples:
        return scrape(f"http://{self.net[host].ip}:{METRICS_PORTS[engine]}/metrics")

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


def on_host(host: Host, service: Service, name: str | None = None) -> Service:
    return replace(service, name=name or service.name, argv=host.argv(service.argv))


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip`)")
    network = Network("a", "b", "c", "d")
    try:
        network.create()
    except (OSError, subprocess.CalledProcessError) as exc:
        network.destroy()
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot create network namespaces (needs CAP_NET_ADMIN): {detail}")
    try:
        yield network
    finally:
        network.destroy()


@pytest.fixture(scope="module")
def data_host(net: Network) -> Iterator[dict[str, str]]:
    """PostgreSQL, Redis and the S3 server on host A; yields the DALSTON_* variables for them."""
    pg = postgres_bin()
    if pg is None or shutil.which("redis-server") is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and redis-server")
    a = net["a"]
    pgdata = Path(tempfile.mkdtemp(prefix="dlst-pg-"))
    shutil.chown(pgdata, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    pg_cluster = pgdata / "data"
    subprocess.run(
        [*as_postgres, str(pg / "initdb"), "-D", str(pg_cluster), "--auth=trust", "-U", "postgres"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    with (pg_cluster / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {net.subnet}.0/24 trust\n")
    services = [
        Service("postgres", a.argv([*as_postgres, str(pg / "postgres"), "-D", str(pg_cluster), "-h", a.ip, "-k", str(pgdata)])),
        Service(
            "redis",
            a.argv(
                ["redis-server", "--bind", a.ip, "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
            ),
        ),
        Service("s3", a.argv([sys.executable, "-m", "moto.server", "-H", a.ip, "-p", "5000"])),
    ]
    fleet = Fleet(services, output=sys.stderr)
    fleet.start()
    try:
        for port in (5432, 6379, 5000):
            wait_tcp(a.ip, port)
        yield {
            "DALSTON_DATABASE_URL": f"postgresql://postgres@{a.ip}:5432/postgres",
            "DALSTON_REDIS_URL": f"redis://{a.ip}:6379/0",
            "DALSTON_STORAGE_BACKEND": "s3",
            "DALSTON_S3_ENDPOINT_URL": f"http://{a.ip}:5000",
            "DALSTON_S3_BUCKET": f"dalston-test-{uuid.uuid4().hex[:8]}",
            "DALSTON_S3_ACCESS_KEY_ID": "test",
            "DALSTON_S3_SECRET_ACCESS_KEY": "test",
            "DALSTON_S3_REGION": "us-east-1",
        }
    finally:
        fleet.stop()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(net: Network, data_host: dict[str, str], tmp_path_factory) -> Iterator[Cluster]:
    b = net["b"]
    env = {
        **data_host,
        "DALSTON_DATA_DIR": str(tmp_path_factory.mktemp("multi-host")),  # local scratch only: objects go to S3
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_HOST": b.ip,
        "DALSTON_WHISPER_CPU_THREADS": "2",
        # A consumer cut off from Redis is presumed dead once its liveness key expires: short,
        # so the cut task moves to D within seconds (the idle-time fallback is short too).
        "DALSTON_CONSUMER_LIVENESS_TTL_S": "3",
        "DALSTON_ENGINE_CLAIM_IDLE_MS": "10000",
        "HF_HUB_OFFLINE": "1",  # no host can reach the internet: the model comes from the local cache
    }
    subprocess.run(b.argv([sys.executable, "-m", "dalston", "migrate"]), env={**os.environ, **env}, cwd=ROOT, check=True)
    services = [on_host(b, gateway_service(GATEWAY_PORT)), on_host(b, orchestrator_service())]
    for host in ("c", "d"):
        for engine in ENGINES:
            service = with_env(engine_service(engine), DALSTON_METRICS_PORT=str(METRICS_PORTS[engine]))
            services.append(on_host(net[host], service, name=f"{host}-{engine}"))
    fleet = Fleet(services, env, cwd=ROOT, output=sys.stderr)
    fleet.start()
    try:
        running = Cluster(net, fleet, f"http://{b.ip}:{GATEWAY_PORT}", data_host["DALSTON_REDIS_URL"])
        wait_http(running.base_url + "/health", timeout=120)
        # Loaded (the gauge is set once the model is in memory), so C and D both take work.
        until(lambda: all(loaded(running, h, e) for h in ("c", "d") for e in ENGINES), "every engine loaded", 300)
        yield running
    finally:
        fleet.stop()


def loaded(cluster: Cluster, host: str, engine: str) -> bool:
    try:
        return sample(cluster.scrape(host, engine), "dalston_engine_model_load_seconds", engine=engine) is not None
    except httpx.HTTPError:
        return False


def until(condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Wait for `condition` (polled); returns when it held (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"never: {what} (gave up after {timeout:.0f} s)")
        time.sleep(0.1)
    return time.monotonic()


def metric(cluster: Cluster, host: str, engine: str, series: str, **labels: str) -> float | None:
    """One sample of a host's engine, None while it is unreachable or has not got it."""
    try:
        return sample(cluster.scrape(host, engine), series, engine=engine, **labels)
    except httpx.HTTPError:
        return None


def events(cluster: Cluster) -> list[dict[str, Any]]:
    entries = cast("list[tuple[str, dict[str, str]]]", cluster.redis().xrange(keys.EVENTS_STREAM))
    return [json.loads(fields["data"]) for _id, fields in entries]


def outcomes(cluster: Cluster, job_id: str) -> Counter[tuple[str, str]]:
    """(event type, task id) -> how often it is on the events stream, for the job's task outcomes."""
    return Counter(
        (e["type"], e["task_id"])
        for e in events(cluster)
        if e.get("job_id") == job_id and e["type"] in ("task.completed", "task.failed")
    )


def held_tasks(cluster: Cluster, consumer: str) -> list[str]:
    """The task ids of the faster-whisper messages pending on `consumer`."""
    r = cluster.redis()
    stream = keys.engine_stream("faster-whisper")
    pending = r.xpending_range(stream, keys.ENGINE_GROUP, min="-", max="+", count=10, consumername=consumer)
    held = []
    for entry in pending:
        for _id, fields in cast("list[tuple[str, dict[str, str]]]", r.xrange(stream, entry["message_id"], entry["message_id"])):
            held.append(json.loads(fields["data"])["task_id"])
    return held


def test_jobs_finish_on_d_when_c_is_cut_off(cluster: Cluster) -> None:
    pid = cluster.fleet.pid("c-faster-whisper")
    # The runner's consumer name; `ip netns exec` execs the engine, so the pid is its own.
    c_consumer = f"faster-whisper-{socket.gethostname()}-{pid}"
    with cluster.client() as client:
        job_ids = [submit(client, FIXTURE).json()["id"] for _ in range(JOBS)]
        until(lambda: metric(cluster, "c", "faster-whisper", "dalston_engine_busy") == 1.0, "C transcribing", 300)
        lost = held_tasks(cluster, c_consumer)
        cut_at = time.monotonic()
        cluster.net["c"].link(False)
        reclaimed_at = until(
            lambda: (metric(cluster, "d", "faster-whisper", "dalston_engine_tasks_reclaimed_total", reason="dead") or 0) >= 1,
            "D reclaimed C's transcription",
            120,
        )
        jobs = [wait_for(client, job_id, timeout=600) for job_id in job_ids]
        done_at = time.monotonic()

    assert len(lost) == 1, lost
    assert all(job["status"] == "completed" and job["transcript"]["text"].strip() for job in jobs), jobs
    before = {job["id"]: outcomes(cluster, job["id"]) for job in jobs}
    for job in jobs:
        counts = before[job["id"]]
        # Every task of the job completed, once, and none failed.
        assert {kind for kind, _ in counts} == {"task.completed"} and set(counts.values()) == {1}, counts
        assert len(counts) == len(job["stages"]), (counts, job["stages"])
    assert any(("task.completed", lost[0]) in counts for counts in before.values())
    # C could not report (cut off), so D completed the task it reclaimed.
    assert (metric(cluster, "d", "faster-whisper", "dalston_engine_tasks_total", outcome="completed") or 0) >= 1

    # C comes back holding an outcome for the task it lost: it drops it rather than report it.
    cluster.net["c"].link(True)
    back_at = time.monotonic()
    dropped_at = until(
        lambda: metric(cluster, "c", "faster-whisper", "dalston_engine_tasks_total", outcome="lost") == 1.0,
        "C dropped its outcome for the task it lost",
        300,
    )
    assert metric(cluster, "c", "faster-whisper", "dalston_engine_busy") == 0.0
    assert {job_id: outcomes(cluster, job_id) for job_id in before} == before  # nothing more was reported
    print(
        f"\nmulti-host timeline (s after C's link went down): D reclaimed C's task at {reclaimed_at - cut_at:.1f}, "
        f"all {JOBS} jobs done at {done_at - cut_at:.1f}, C back at {back_at - cut_at:.1f}, "
        f"C dropped its stale outcome at {dropped_at - cut_at:.1f}"
    )
