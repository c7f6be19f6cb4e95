"""Retention: the `retention` a job or session gets (request, tenant default, server
default), and the purge that removes its media once it has run out, keeping the
transcript, stamping `purged_at` and writing an audit event. Real PostgreSQL, Redis and a
filesystem store; the purge runs as the orchestrator runs it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from test_gateway_api import SHORT_WAV, URL, add_key, assert_error, make_client, settings, submit  # noqa: F401

from orchestrator.service import Orchestrator
from shared import keys
from shared.db import AuditEvent, Job, RealtimeSession
from shared.transcript import Transcript


async def _tenant_of(services, key: str) -> uuid.UUID:
    from shared.bootstrap import hash_key
    from shared.db import ApiKey

    async with services.sessionmaker() as db:
        return (await db.scalars(select(ApiKey.tenant_id).where(ApiKey.key_hash == hash_key(key)))).one()


async def test_retention_comes_from_the_request_the_tenant_or_the_server(make_client) -> None:  # noqa: F811
    client, services = await make_client(retention_days=30)
    key = await add_key(services)
    client.headers["Authorization"] = f"Bearer {key}"
    assert (await submit(client)).json()["retention_days"] == 30  # the server's default
    assert (await submit(client, retention="7")).json()["retention_days"] == 7
    assert (await submit(client, retention="-1")).json()["retention_days"] == -1
    for bad in ("forever", "-2", "40000"):
        error = assert_error(await submit(client, retention=bad), 400, "invalid_parameter")
        assert "retention" in error["message"]

    tenant = await _tenant_of(services, key)
    other, _ = await make_client(retention_days=30, retention_overrides={str(tenant): 0})
    other.headers["Authorization"] = f"Bearer {key}"
    job = (await submit(other)).json()
    assert job["retention_days"] == 0 and job["purged_at"] is None
    fetched = (await other.get(f"{URL}/{job['id']}")).json()
    assert fetched["retention_days"] == 0


async def _completed(services, client, *, retention: int, finished_ago: timedelta) -> uuid.UUID:
    """A job submitted through the API, then completed `finished_ago` with a stored transcript
    and stage artifacts, as the pipeline leaves it."""
    job_id = uuid.UUID((await submit(client, retention=str(retention))).json()["id"])
    transcript_key = f"{keys.task_prefix(job_id, 'merge')}output.json"
    transcript = Transcript(
        text="kept", language="en", language_probability=1.0, duration=2.7, segments=[], words=[], model="tiny.en"
    )
    services.store.put_bytes(transcript_key, transcript.model_dump_json().encode())
    services.store.put_bytes(f"{keys.task_prefix(job_id, 'prepare')}audio.wav", b"decoded")
    services.store.put_bytes(keys.job_redacted_audio(job_id), b"redacted")
    async with services.sessionmaker() as db, db.begin():
        await db.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="completed", transcript_key=transcript_key, completed_at=datetime.now(UTC) - finished_ago)
        )
    return job_id


async def test_the_purge_removes_media_keeps_the_transcript_and_says_when(make_client, redis_url: str) -> None:  # noqa: F811
    client, services = await make_client()
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    expired = await _completed(services, client, retention=1, finished_ago=timedelta(days=2))
    immediate = await _completed(services, client, retention=0, finished_ago=timedelta(seconds=1))
    not_yet = await _completed(services, client, retention=5, finished_ago=timedelta(days=2))
    kept = await _completed(services, client, retention=-1, finished_ago=timedelta(days=3650))

    orchestrator = Orchestrator(services.sessionmaker, services.redis, services.settings, consumer="purger", store=services.store)
    assert await orchestrator.purge_expired() == 2
    assert await orchestrator.purge_expired() == 0  # once

    for job_id in (expired, immediate):
        detail = (await client.get(f"{URL}/{job_id}")).json()
        assert detail["transcript"]["text"] == "kept" and detail["purged_at"] is not None
        assert services.store.list_children(keys.job_prefix(job_id)) == ["tasks"]
        assert services.store.list_children(f"{keys.job_prefix(job_id)}tasks/") == ["merge"]
        gone = assert_error(await client.get(f"{URL}/{job_id}/audio"), 404, "audio_not_found")
        assert "retention" in gone["message"] and "transcript is kept" in gone["message"]
        assert (await client.get(f"{URL}/{job_id}/export/txt")).status_code == 200
        refused = assert_error(await client.post(f"{URL}/{job_id}/rerun"), 404, "audio_not_found")
        assert "retention" in refused["message"]
    for job_id in (not_yet, kept):
        assert (await client.get(f"{URL}/{job_id}")).json()["purged_at"] is None
        assert (await client.get(f"{URL}/{job_id}/audio")).status_code == 200

    async with services.sessionmaker() as db:
        audited = list(await db.scalars(select(AuditEvent).where(AuditEvent.action == "job.purged")))
    by_job = {event.resource_id: event for event in audited}
    assert set(by_job) >= {str(expired), str(immediate)} and str(kept) not in by_job
    assert by_job[str(expired)].details == {"retention_days": 1, "objects": 3}


async def test_a_sessions_recording_is_purged_its_transcript_kept(make_client) -> None:  # noqa: F811
    client, services = await make_client()
    key = await add_key(services, scopes=["realtime"])
    client.headers["Authorization"] = f"Bearer {key}"
    tenant = await _tenant_of(services, key)
    session_id = uuid.uuid4()
    async with services.sessionmaker() as db, db.begin():
        db.add(
            RealtimeSession(
                id=session_id, tenant_id=tenant, status="completed", protocol="native", model="tiny.en",
                retain_audio=True, retention_days=0, ended_at=datetime.now(UTC) - timedelta(seconds=1),
            )
        )  # fmt: skip
    services.store.put_bytes(keys.session_chunk(session_id, 0), bytes(32000))
    services.store.put_bytes(keys.session_manifest(session_id), b"{}")
    services.store.put_bytes(keys.session_transcript(session_id), b'{"text": "kept", "segments": []}')

    orchestrator = Orchestrator(services.sessionmaker, services.redis, services.settings, consumer="purger", store=services.store)
    assert await orchestrator.purge_expired() == 1

    detail = (await client.get(f"/v1/realtime/sessions/{session_id}")).json()
    assert detail["retention_days"] == 0 and detail["purged_at"] is not None
    assert (await client.get(f"/v1/realtime/sessions/{session_id}/transcript")).json()["text"] == "kept"
    gone = assert_error(await client.get(f"/v1/realtime/sessions/{session_id}/audio"), 404, "recording_not_found")
    assert "retention" in gone["message"]
    assert not services.store.exists(keys.session_chunk(session_id, 0))
