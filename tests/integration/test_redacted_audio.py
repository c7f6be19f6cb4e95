"""`GET /v1/audio/transcriptions/{id}/audio/redacted`, and what the original's routes say once
redaction deleted it (real PostgreSQL, Redis and filesystem store through the app)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from test_auth_matrix import add_job, auth
from test_console import add_key, key_row

from gateway.app import create_app
from gateway.services import Services
from shared import keys
from shared.contracts import EnrichOptions, JobParameters
from shared.db import Job
from shared.settings import Settings

REDACTED = b"RIFF" + bytes(range(256)) * 20


@dataclass
class World:
    client: httpx.AsyncClient
    services: Services
    reader: str
    writer: str
    other: str


@pytest.fixture(scope="module")
async def world(database_url: str, redis_url: str, tmp_path_factory) -> AsyncIterator[World]:
    settings = Settings(
        database_url=database_url, redis_url=redis_url, data_dir=tmp_path_factory.mktemp("redacted"), storage_backend="fs"
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    tenant = f"redact-{uuid.uuid4().hex[:8]}"
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60)
    try:
        yield World(
            client=client,
            services=services,
            reader=await add_key(services, tenant, ["jobs:read"]),
            writer=await add_key(services, tenant, ["jobs:read", "jobs:write"]),
            other=await add_key(services, f"{tenant}-other", ["jobs:read"]),
        )
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def redaction_job(w: World, *, status: str = "completed", delete_original: bool = False, **values: Any) -> str:
    tenant_id = (await key_row(w.services, w.reader)).tenant_id
    job_id = uuid.UUID(await add_job(w.services, tenant_id))
    enrich = EnrichOptions(pii_detection=True, redact_pii_audio=True, delete_original_audio=delete_original)
    original = keys.job_audio(job_id, ".mp3")
    await asyncio.to_thread(w.services.store.put_bytes, original, b"ID3" + b"\0" * 100)
    async with w.services.sessionmaker() as db, db.begin():
        await db.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status=status,
                parameters=JobParameters(enrich=enrich).model_dump(mode="json"),
                audio_key=original,
                audio_filename="call.mp3",
                **values,
            )
        )
    return str(job_id)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_serves_the_redacted_wav_with_ranges_to_its_tenant_only(world: World) -> None:
    job = await redaction_job(world)
    url = f"/v1/audio/transcriptions/{job}/audio/redacted"
    missing = await world.client.get(url, headers=auth(world.reader))
    assert missing.status_code == 404 and error_code(missing) == "audio_not_found"

    await asyncio.to_thread(world.services.store.put_bytes, keys.job_redacted_audio(job), REDACTED)
    full = await world.client.get(url, headers=auth(world.reader))
    assert full.status_code == 200 and full.content == REDACTED
    assert full.headers["content-type"] == "audio/wav" and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-disposition"].startswith("inline") and "call.redacted.wav" in full.headers["content-disposition"]
    part = await world.client.get(url, headers={**auth(world.reader), "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == REDACTED[100:200]

    # The original is still served beside it (the job did not ask to delete it).
    original = await world.client.get(f"/v1/audio/transcriptions/{job}/audio", headers=auth(world.reader))
    assert original.status_code == 200 and original.headers["content-type"] == "audio/mpeg"

    hidden = await world.client.get(url, headers=auth(world.other))
    assert hidden.status_code == 404 and error_code(hidden) == "job_not_found"
    anonymous = await world.client.get(url)
    assert anonymous.status_code == 401


async def test_not_requested_and_not_completed(world: World) -> None:
    plain = await add_job(world.services, (await key_row(world.services, world.reader)).tenant_id)
    response = await world.client.get(f"/v1/audio/transcriptions/{plain}/audio/redacted", headers=auth(world.reader))
    assert response.status_code == 404 and error_code(response) == "redacted_audio_not_requested"
    assert "redact_pii_audio" in response.json()["error"]["message"]

    for status in ("pending", "running", "failed"):
        job = await redaction_job(world, status=status, completed_at=None)
        response = await world.client.get(f"/v1/audio/transcriptions/{job}/audio/redacted", headers=auth(world.reader))
        assert response.status_code == 409 and error_code(response) == "job_not_completed", status
        assert status in response.json()["error"]["message"]


async def test_a_deleted_original_says_why_on_playback_and_rerun(world: World) -> None:
    job = await redaction_job(world, delete_original=True)
    await asyncio.to_thread(world.services.store.put_bytes, keys.job_redacted_audio(job), REDACTED)
    await asyncio.to_thread(world.services.store.delete_prefix, keys.job_audio(job, ".mp3"))

    playback = await world.client.get(f"/v1/audio/transcriptions/{job}/audio", headers=auth(world.reader))
    assert playback.status_code == 404 and error_code(playback) == "audio_not_found"
    assert "deleted after redaction as the job asked" in playback.json()["error"]["message"]

    rerun = await world.client.post(f"/v1/audio/transcriptions/{job}/rerun", headers=auth(world.writer))
    assert rerun.status_code == 404 and error_code(rerun) == "audio_not_found"
    assert "deleted after redaction as the job asked" in rerun.json()["error"]["message"]

    # The redacted audio is what remains.
    redacted = await world.client.get(f"/v1/audio/transcriptions/{job}/audio/redacted", headers=auth(world.reader))
    assert redacted.status_code == 200 and redacted.content == REDACTED
