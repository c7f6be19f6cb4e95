"""One gateway's job submissions per second on small files, and GET latency under 50
concurrent clients, read from the fleet's own Prometheus metrics.

    .venv/bin/python bench/gateway_throughput.py [--seconds 20] [--submitters 8] [--readers 50]

A fleet of one gateway and one orchestrator (no engines: the jobs wait on the prepare
stream, so only the submission path is measured) runs on a throwaway database with the
per-tenant rate limits off. Phase 1: `--submitters` clients post `short_en.wav` (118 KiB,
2.7 s) back to back for `--seconds`; reported: accepted jobs per second, from the gateway's
`dalston_gateway_jobs_submitted_total`, and the POST latency quantiles from its
`dalston_gateway_http_request_duration_seconds` histogram (bucket-interpolated, as
Prometheus' histogram_quantile does), beside the clients' own count and p50/p99. Phase 2:
`--readers` clients each GET one of those jobs (`/v1/audio/transcriptions/{id}`) back to
back for `--seconds`; reported: requests per second and p50/p99, from the histogram and
from the clients. The clients run on the same machine as the fleet and share its cores.

Needs PostgreSQL and Redis (defaults: the test services on 127.0.0.1; TEST_POSTGRES_URL and
TEST_REDIS_URL override them). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import FIXTURES, REDIS_URL, create_database, drop_database, free_port  # noqa: E402

from dalston.fleet import Fleet, gateway_service, orchestrator_service, wait_http  # noqa: E402

API_KEY = "dk_bench_" + uuid.uuid4().hex
REDIS_DB = 7  # apart from the tests' databases
LATENCY = "dalston_gateway_http_request_duration_seconds"
SUBMITTED = "dalston_gateway_jobs_submitted_total"
JOBS = "/v1/audio/transcriptions"
JOB = "/v1/audio/transcriptions/{job_id}"

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str) -> Metrics:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(metrics: Metrics, name: str) -> float:
    return sum(v for (n, _labels), v in metrics.items() if n == name)


def buckets(metrics: Metrics, method: str, route: str) -> list[tuple[float, float]]:
    """The latency histogram's cumulative buckets (upper bound, count) for one route."""
    found = []
    for (name, labels), count in metrics.items():
        tags = dict(labels)
        if name == f"{LATENCY}_bucket" and tags.get("method") == method and tags.get("route") == route:
            found.append((float(tags["le"]), count))
    return sorted(found)


def quantile(q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """histogram_quantile over the increase between two scrapes (linear within a bucket)."""
    old = dict(before)
    counts = [(le, count - old.get(le, 0.0)) for le, count in after]
    rank = q * counts[-1][1]
    lower, below = 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= rank:
            if le == float("inf"):
                return lower  # past the last finite bucket: its bound is all one can say
            return lower + (le - lower) * ((rank - below) / max(cumulative - below, 1e-9))
        lower, below = le, cumulative
    return lower


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def submit_for(base_url: str, seconds: float, clients: int, audio: bytes) -> tuple[list[str], list[float], int]:
    ids: list[str] = []
    latencies: list[float] = []
    refused = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal refused
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as c:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    response = await c.post(JOBS, files={"file": ("short_en.wav", audio, "audio/wav")})
                except httpx.TransportError:  # counted, not fatal: the report says how many
                    refused += 1
                    continue
                latencies.append(time.perf_counter() - began)
                if response.status_code == 201:
                    ids.append(response.json()["id"])
                else:
                    refused += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return ids, latencies, refused


async def read_for(base_url: str, seconds: float, clients: int, ids: list[str]) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients)

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal failed
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                response = await c.get(f"{JOBS}/{random.choice(ids)}")
            except httpx.TransportError:
                failed += 1
                continue
            latencies.append(time.perf_counter() - began)
            failed += response.status_code != 200

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    return latencies, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--readers", type=int, default=50)
    args = parser.parse_args()

    database_url = create_database()
    redis_url = f"{REDIS_URL}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    data_dir = tempfile.TemporaryDirectory(prefix="dalston-bench-")
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": redis_url,
        "DALSTON_DATA_DIR": data_dir.name,
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_LOG_LEVEL": "WARNING",
        "DALSTON_RATE_LIMIT_REQUESTS": "0",
        "DALSTON_RATE_LIMIT_CONCURRENT_JOBS": "0",
        # Jobs wait for an engine that never comes; they must not fail mid-run.
        "DALSTON_ENGINE_UNAVAILABLE_AFTER_S": "3600",
    }
    subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
    fleet = Fleet([gateway_service(port), orchestrator_service()], env, cwd=ROOT, output=sys.stderr)
    base_url = f"http://127.0.0.1:{port}"
    audio = (FIXTURES / "short_en.wav").read_bytes()
    try:
        fleet.start()
        wait_http(f"{base_url}/health", timeout=60)
        asyncio.run(submit_for(base_url, 2.0, 2, audio))  # warm-up: connections, caches

        before = scrape(base_url)
        began = time.monotonic()
        ids, post_latencies, refused = asyncio.run(submit_for(base_url, args.seconds, args.submitters, audio))
        elapsed = time.monotonic() - began
        after = scrape(base_url)
        accepted = total(after, SUBMITTED) - total(before, SUBMITTED)
        post_before, post_after = buckets(before, "POST", JOBS), buckets(after, "POST", JOBS)
        print(f"submissions ({args.submitters} clients, {elapsed:.1f} s, {len(audio) // 1024} KiB files):")
        print(f"  gateway metrics: {accepted / elapsed:.1f} jobs/s accepted ({accepted:.0f}), POST p50 "
              f"{quantile(0.5, post_before, post_after) * 1000:.0f} ms, p99 {quantile(0.99, post_before, post_after) * 1000:.0f} ms")  # fmt: skip
        print(f"  clients:         {len(ids) / elapsed:.1f} jobs/s ({len(ids)} accepted, {refused} refused or cut), "
              f"p50 {percentile(post_latencies, 0.5) * 1000:.0f} ms, p99 {percentile(post_latencies, 0.99) * 1000:.0f} ms")  # fmt: skip

        before = scrape(base_url)
        began = time.monotonic()
        get_latencies, failed = asyncio.run(read_for(base_url, args.seconds, args.readers, ids))
        elapsed = time.monotonic() - began
        after = scrape(base_url)
        get_before, get_after = buckets(before, "GET", JOB), buckets(after, "GET", JOB)
        served = get_after[-1][1] - (get_before[-1][1] if get_before else 0.0)
        print(f"GET one job ({args.readers} concurrent clients, {elapsed:.1f} s):")
        print(f"  gateway metrics: {served / elapsed:.0f} requests/s, p50 "
              f"{quantile(0.5, get_before, get_after) * 1000:.0f} ms, p99 {quantile(0.99, get_before, get_after) * 1000:.0f} ms")  # fmt: skip
        print(f"  clients:         {len(get_latencies) / elapsed:.0f} requests/s ({failed} not 200 or cut), "
              f"p50 {percentile(get_latencies, 0.5) * 1000:.0f} ms, p99 {percentile(get_latencies, 0.99) * 1000:.0f} ms")  # fmt: skip
    finally:
        fleet.stop()
        drop_database(database_url)
        redis.Redis.from_url(redis_url).flushdb()
        data_dir.cleanup()


if __name__ == "__main__":
    main()
