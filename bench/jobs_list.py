"""The jobs list (`GET /v1/audio/transcriptions`) with 100 000 jobs: latency per filter, with
and without migration 0008's indexes.

    .venv/bin/python bench/jobs_list.py [--rows 100000] [--requests 50]

A throwaway database is migrated to 0007 (the schema before the filter indexes) and filled
by COPY with `--rows` jobs of four tenants (one holds half of them), spread over 90 days,
with realistic status / model / speaker-mode skews and file names. Each query is then timed
through the real gateway app (its lifespan, auth and serialization; httpx's ASGI transport,
no network) as the big tenant: first page, a deep page by cursor, each filter, filename
search, a combination. Then the database is upgraded to head (0008's indexes are built on
the full table, timed) and the same queries are timed again. For each: p50/p95 over
`--requests` requests after warm-up, the indexes the plan reads (EXPLAIN ANALYZE of the
endpoint's own SQL) and the before/after p95 ratio.

Needs PostgreSQL and Redis (defaults: the test services on 127.0.0.1; TEST_POSTGRES_URL and
TEST_REDIS_URL override them). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DALSTON_LOG_LEVEL", "WARNING")  # no line per request among the results

from gateway.app import create_app  # noqa: E402
from gateway.job_filters import job_filters  # noqa: E402
from gateway.pagination import decode_cursor, encode_cursor  # noqa: E402
from shared.bootstrap import generate_key, hash_key  # noqa: E402
from shared.db import Job  # noqa: E402
from shared.settings import Settings  # noqa: E402

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
URL = "/v1/audio/transcriptions"
PAGE = 25  # the console's page size
BEFORE = "0007_jobs_created_index"

# Skews of a plausible fleet: most jobs complete, a few fail; one model dominates.
STATUSES = {"completed": 0.86, "failed": 0.04, "cancelled": 0.03, "pending": 0.05, "running": 0.02}
MODELS = {
    "whisper-large-v3": 0.55,
    "parakeet-tdt-0.6b-v2": 0.25,
    "whisper-small": 0.12,
    "distil-large-v3": 0.07,
    "canary-1b": 0.01,
}
SPEAKERS = {"none": 0.70, "diarize": 0.27, "per_channel": 0.03}
NAMES = [
    "call-center",
    "meeting-standup",
    "podcast-episode",
    "interview",
    "lecture",
    "voicemail",
    "board-review",
    "support-ticket",
]
FORMATS = ["wav", "mp3", "m4a", "flac"]
TENANT_SHARES = [0.5, 0.2, 0.2, 0.1]


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def job_rows(tenants: list[uuid.UUID], rows: int, now: datetime, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for n in range(rows):
        tenant = rng.choices(tenants, weights=TENANT_SHARES)[0]
        status = pick(rng, STATUSES)
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        job_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        fmt = rng.choice(FORMATS)
        filename = f"{rng.choice(NAMES)}-{created:%Y%m%d}-{n:06d}.{fmt}"
        duration = rng.uniform(5, 3600)
        finished = created + timedelta(seconds=duration / 20) if status in ("completed", "failed", "cancelled") else None
        yield (
            job_id,
            tenant,
            status,
            pick(rng, MODELS),
            rng.choice(["en", "de", None]),
            pick(rng, SPEAKERS),
            "{}",
            f"jobs/{job_id}/audio",
            filename,
            int(duration * 32000),
            fmt,
            duration,
            rng.choice([1, 1, 1, 2]),
            16000,
            "[]",
            created,
            finished if status != "pending" else None,
            finished,
            "the diarize stage failed" if status == "failed" else None,
        )


COLUMNS = [
    "id",
    "tenant_id",
    "status",
    "model",
    "language",
    "speaker_detection",
    "parameters",
    "audio_key",
    "audio_filename",
    "audio_bytes",
    "audio_format",
    "audio_duration",
    "audio_channels",
    "audio_sample_rate",
    "warnings",
    "created_at",
    "started_at",
    "completed_at",
    "error",
]


def migrate(url: str, revision: str) -> None:
    cfg = Config(str(ROOT / "migrations" / "alembic.ini"))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, revision)


async def fill(url: str, rows: int) -> tuple[str, uuid.UUID]:
    """Tenants, an API key of the biggest one (returned with its tenant id) and `rows` jobs."""
    conn = await asyncpg.connect(url)
    try:
        tenants = [uuid.uuid4() for _ in TENANT_SHARES]
        await conn.executemany(
            "INSERT INTO tenants (id, name) VALUES ($1, $2)", [(t, f"bench-{i}") for i, t in enumerate(tenants)]
        )
        key = generate_key()
        await conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ($1, $2, 'bench', $3, $4, $5)",
            uuid.uuid4(),
            tenants[0],
            key[:10],
            hash_key(key),
            ["jobs:read"],
        )
        # COPY speaks the binary format: jsonb's is a version byte (1) and the JSON text.
        await conn.set_type_codec(
            "jsonb",
            encoder=lambda v: b"\x01" + v.encode(),
            decoder=lambda b: json.loads(b[1:]),
            schema="pg_catalog",
            format="binary",
        )
        await conn.copy_records_to_table("jobs", records=job_rows(tenants, rows, datetime.now(UTC)), columns=COLUMNS)
        await conn.execute("ANALYZE jobs")
        return key, tenants[0]
    finally:
        await conn.close()


@dataclass
class Case:
    name: str
    params: dict[str, str]


async def cases(url: str, tenant: uuid.UUID, rows: int) -> list[Case]:
    conn = await asyncpg.connect(url)
    try:
        # A cursor 40 % deep into the big tenant's list (row 20 000, page 800, with 100 000 jobs).
        deep = await conn.fetchrow(
            "SELECT created_at, id FROM jobs WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            tenant,
            rows // 5,
        )
        rare_name = await conn.fetchval("SELECT audio_filename FROM jobs WHERE tenant_id = $1 ORDER BY id LIMIT 1", tenant)
    finally:
        await conn.close()
    one_file = "-" + rare_name.rsplit("-", 1)[1].split(".")[0] + "."  # "-012446.": its number, unique
    month_ago = datetime.now(UTC) - timedelta(days=30)
    return [
        Case("first page", {}),
        Case(f"deep page (cursor, row {rows // 5})", {"cursor": encode_cursor(deep["created_at"], deep["id"])}),
        Case("status=completed", {"status": "completed"}),
        Case("status=failed", {"status": "failed"}),
        Case("status=running", {"status": "running"}),
        Case("model=whisper-large-v3", {"model": "whisper-large-v3"}),
        Case("model=canary-1b (1 %)", {"model": "canary-1b"}),
        Case("model=unknown (no rows)", {"model": "no-such-model"}),
        Case("speaker_detection=diarize", {"speaker_detection": "diarize"}),
        Case("speaker_detection=per_channel", {"speaker_detection": "per_channel"}),
        Case(
            "created in one week a month ago",
            {"created_after": month_ago.isoformat(), "created_before": (month_ago + timedelta(days=7)).isoformat()},
        ),
        Case("q=interview (1 in 8)", {"q": "interview"}),
        Case(f"q={one_file} (one file)", {"q": one_file}),
        Case("q=zzzz (no match)", {"q": "zzzz"}),
        Case("failed + diarize + q=call", {"status": "failed", "speaker_detection": "diarize", "q": "call"}),
    ]


def endpoint_sql(tenant: uuid.UUID, params: dict[str, str]) -> tuple[str, list[Any]]:
    """The SQL list_transcriptions runs for `params` (filters, keyset, order, limit + 1)."""
    from sqlalchemy import tuple_

    filters = job_filters(
        status=params.get("status"),
        model=params.get("model"),
        speaker_detection=params.get("speaker_detection"),
        created_after=datetime.fromisoformat(params["created_after"]) if "created_after" in params else None,
        created_before=datetime.fromisoformat(params["created_before"]) if "created_before" in params else None,
        q=params.get("q"),
    )
    query = filters.apply(select(Job).where(Job.tenant_id == tenant))
    if "cursor" in params:
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*decode_cursor(params["cursor"])))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(PAGE + 1)
    compiled = query.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    return str(compiled), [compiled.params[name] for name in compiled.positiontup or []]


def plan_summary(plan: dict[str, Any]) -> str:
    """ "Index Scan Backward ix_… → Limit" style: the scan nodes and the indexes they read."""
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if "Index Name" in node:
            scans.append(f"{kind} {node['Index Name']}")
        elif kind == "Seq Scan":
            scans.append("Seq Scan jobs")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return ", ".join(scans)


async def time_sql(url: str, tenant: uuid.UUID, params: dict[str, str], requests: int) -> tuple[str, list[float]]:
    """The plan of the endpoint's SQL, and its own latency (prepared, as the gateway runs it):
    the database's share of the request, without the HTTP layer's noise."""
    sql, args = endpoint_sql(tenant, params)
    conn = await asyncpg.connect(url)
    try:
        raw = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *args)
        statement = await conn.prepare(sql)
        samples: list[float] = []
        for i in range(requests + 5):
            t0 = time.perf_counter()
            await statement.fetch(*args)
            if i >= 5:
                samples.append((time.perf_counter() - t0) * 1000)
    finally:
        await conn.close()
    return plan_summary(json.loads(raw)[0]), samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def time_cases(url: str, key: str, tenant: uuid.UUID, all_cases: list[Case], requests: int) -> dict[str, dict[str, Any]]:
    settings = Settings(
        database_url=url,
        redis_url=f"{REDIS_URL}/14",
        data_dir=Path(tempfile.mkdtemp()),
        storage_backend="fs",
        rate_limit_requests=0,
    )
    app = create_app(settings)
    results: dict[str, dict[str, Any]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers={"Authorization": f"Bearer {key}"}
        ) as client:
            for case in all_cases:
                params = {"limit": str(PAGE), **case.params}
                samples: list[float] = []
                count = 0
                for i in range(requests + 5):  # 5 warm-ups: connections, prepared statements, caches
                    t0 = time.perf_counter()
                    response = await client.get(URL, params=params)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert response.status_code == 200, response.text
                    count = len(response.json()["jobs"])
                    if i >= 5:
                        samples.append(elapsed)
                plan, sql = await time_sql(url, tenant, case.params, requests)
                results[case.name] = {
                    "p50": statistics.median(samples),
                    "p95": percentile(samples, 95),
                    "rows": count,
                    "plan": plan,
                    "sql_p95": percentile(sql, 95),
                }
    return results


def report(title: str, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'query':42} {'rows':>4} {'p50 ms':>7} {'p95 ms':>7} {'SQL p95':>8}  plan")
    for name, r in results.items():
        print(f"  {name:42} {r['rows']:>4} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['sql_p95']:>8.2f}  {r['plan']}")


async def create_database() -> str:
    name = f"dalston_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{POSTGRES_URL}/{name}"


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    url = asyncio.run(create_database())
    try:
        migrate(url, BEFORE)
        t0 = time.perf_counter()
        key, tenant = asyncio.run(fill(url, args.rows))
        print(
            f"{args.rows} jobs in 4 tenants (the timed one holds ~{TENANT_SHARES[0]:.0%}) loaded in {time.perf_counter() - t0:.1f} s"
        )
        all_cases = asyncio.run(cases(url, tenant, args.rows))

        before = asyncio.run(time_cases(url, key, tenant, all_cases, args.requests))
        report(f"before migration 0008 (schema at {BEFORE})", before)

        t0 = time.perf_counter()
        migrate(url, "head")
        print(f"\nmigration 0008 on {args.rows} rows: {time.perf_counter() - t0:.1f} s")
        asyncio.run(_analyze(url))

        after = asyncio.run(time_cases(url, key, tenant, all_cases, args.requests))
        report("after migration 0008", after)

        print(f"\n  {'query':42} {'HTTP p95 before → after':>24} {'ratio':>6}   {'SQL p95 before → after':>24} {'ratio':>6}")
        for name in after:
            b, a = before[name]["p95"], after[name]["p95"]
            sb, sa = before[name]["sql_p95"], after[name]["sql_p95"]
            print(f"  {name:42} {b:>10.1f} → {a:>6.1f} ms {b / a:>5.1f}x   {sb:>10.2f} → {sa:>6.2f} ms {sb / sa:>5.1f}x")
        worst = max(after.values(), key=lambda r: r["p95"])
        print(f"\nslowest p95 after: {worst['p95']:.1f} ms")
    finally:
        asyncio.run(drop_database(url))


async def _analyze(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE jobs")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
