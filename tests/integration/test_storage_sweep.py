"""The orchestrator's storage sweeper, on both storage backends: objects under jobs/{id}/
and sessions/{id}/ that no row owns go once idle past the grace period; nothing else does."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from test_orchestrator import make_job

from orchestrator.service import Orchestrator
from shared.db import RealtimeSession, Tenant, async_url
from shared.settings import Settings
from shared.storage import FileStore, ObjectStore, S3Store
from shared.streams import connect


@pytest.fixture(scope="module")
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(async_url(database_url))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


async def _owners(sm: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    async with sm() as db, db.begin():
        tenant = Tenant(name=f"sweep-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
    job_id = await make_job(sm, tenant.id)
    async with sm() as db, db.begin():
        session = RealtimeSession(tenant_id=tenant.id, protocol="native", model="tiny.en", retain_audio=True)
        db.add(session)
    return job_id, str(session.id)


def _age(store: FileStore, key: str, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(store.root / key, (stamp, stamp))


async def _sweep(sm, r, store: ObjectStore, grace_s: float) -> int:
    """One sweep; how many objects it deleted."""
    settings = Settings(storage_sweep_grace_s=grace_s)
    orchestrator = Orchestrator(sm, r, settings, consumer=f"sweeper-{uuid.uuid4().hex[:6]}", store=store)
    return await orchestrator.sweep_storage()


async def test_filesystem_sweep(sessionmaker, r, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "storage")
    job_id, session_id = await _owners(sessionmaker)
    orphan_job, half_stored, fresh, orphan_session = (str(uuid.uuid4()) for _ in range(4))
    kept = {
        f"jobs/{job_id}/audio/original.wav": 3600,  # owned, however old
        f"sessions/{session_id}/audio/chunk-00000.pcm": 3600,
        f"jobs/{fresh}/audio/original.wav": 0,  # no row yet: the gateway may be about to write it
        "jobs/not-an-id/notes.txt": 3600,  # not a name we give
        f"speakers/{uuid.uuid4()}/sample.wav": 3600,  # not a job or session prefix
    }
    swept = {
        f"jobs/{orphan_job}/audio/original.wav": 3600,  # the gateway died between storing and the row
        f"jobs/{orphan_job}/tasks/prepare/output.json": 3600,
        f"jobs/{half_stored}/audio/.tmp-k1ll3d": 3600,  # ... or while storing
        f"sessions/{orphan_session}/transcript.json": 3600,
    }
    for key, age in {**kept, **swept}.items():
        store.put_bytes(key, b"x" * 10)
        _age(store, key, age)

    assert await _sweep(sessionmaker, r, store, grace_s=600) == len(swept)
    assert all(store.exists(key) for key in kept), [k for k in kept if not store.exists(k)]
    for key in swept:
        assert not (store.root / key).exists(), key
    assert not (store.root / "jobs" / orphan_job).exists()


async def test_s3_sweep(sessionmaker, r, s3_env: dict[str, str]) -> None:
    settings = Settings(**{k.removeprefix("DALSTON_").lower(): v for k, v in s3_env.items()})
    store = S3Store(settings)
    store.ensure_bucket()
    job_id, session_id = await _owners(sessionmaker)
    orphan_job, orphan_session = str(uuid.uuid4()), str(uuid.uuid4())
    kept = [f"jobs/{job_id}/audio/original.wav", f"sessions/{session_id}/transcript.json", f"speakers/{uuid.uuid4()}/a.wav"]
    swept = [f"jobs/{orphan_job}/audio/original.wav", f"jobs/{orphan_job}/tasks/merge/output.json"]
    swept += [f"sessions/{orphan_session}/audio/manifest.json"]
    for key in kept + swept:
        store.put_bytes(key, b"x")
    assert await _sweep(sessionmaker, r, store, grace_s=3600) == 0  # all written just now

    await _sweep(sessionmaker, r, store, grace_s=-1)  # S3 cannot backdate objects: no grace
    assert [k for k in kept if not store.exists(k)] == []
    assert [k for k in swept if store.exists(k)] == []
