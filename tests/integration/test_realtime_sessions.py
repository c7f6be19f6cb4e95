"""Realtime session history and hybrid enhancement against real PostgreSQL, Redis and
object storage (filesystem and S3): rows as the gateway writes them, recordings as the
worker writes them, and the REST API over both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soxr
from sqlalchemy import select

from gateway import hybrid
from gateway.app import create_app
from gateway.auth import Principal
from gateway.realtime_sessions import SessionRecord
from gateway.services import Services
from shared.audio import read_wav
from shared.bootstrap import generate_key, hash_key
from shared.db import ApiKey, Job, RealtimeSession, RealtimeSessionStatus, Tenant
from shared.realtime import protocol as p
from shared.realtime import recording
from shared.realtime.recording import Recorder
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
URL = "/v1/realtime/sessions"


@pytest.fixture(params=["fs", "s3"])
async def api(request, database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    extra = {}
    if request.param == "s3":
        env = request.getfixturevalue("s3_env")
        extra = {
            "storage_backend": "s3",
            "s3_endpoint_url": env["DALSTON_S3_ENDPOINT_URL"],
            "s3_bucket": env["DALSTON_S3_BUCKET"],
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
        }
    settings = Settings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path, **extra)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            yield client, app.state.services


async def add_principal(services: Services, scopes: list[str]) -> tuple[str, Principal]:
    key = generate_key()
    async with services.sessionmaker() as db, db.begin():
        tenant = Tenant(name=f"tenant-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
        await db.flush()
        row = ApiKey(tenant_id=tenant.id, name="test", prefix=key[:10], key_hash=hash_key(key), scopes=scopes)
        db.add(row)
        await db.flush()
        principal = Principal(key_id=row.id, tenant_id=tenant.id, scopes=frozenset(scopes))
    return key, principal


def speech_pcm() -> bytes:
    audio, rate = read_wav(FIXTURES / "short_en.wav")
    audio = soxr.resample(audio, rate, 16_000)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


async def run_session(
    services: Services,
    principal: Principal,
    audio: bytes,
    *,
    query: dict[str, str] | None = None,
    crash: bool = False,
    model: str = "tiny.en",
) -> SessionRecord:
    """What the gateway and the worker do for one session, minus the sockets."""
    options = hybrid.parse(query or {}, settings=services.settings, principal=principal, model=model, language="en")
    session_id = uuid.uuid4()
    params = p.SessionParams(model=model, language="en", record=options.retain_audio)
    record = await SessionRecord.create(
        services, principal, session_id, protocol="native", model=model, params=params, worker_id="worker-1", options=options
    )
    recorder = Recorder(services.store, str(session_id), chunk_seconds=1.0) if options.retain_audio else None
    final = p.TranscriptFinal(
        utterance_id=0, text="hello world this is a test", start=0.2, end=2.0, language="en", reason="vad", latency_ms=80.0
    )
    if recorder:
        recorder.append(np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0)
        recorder.add_final(final)
    record.observe(final)
    if crash:
        if recorder:  # the worker dies: what its writer stored stays, the buffer is lost
            while not recorder.queue.empty():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            recorder.writer.cancel()
        await record.enhance()
        await record.finish(RealtimeSessionStatus.interrupted, "worker_lost: the worker died")
        return record
    end = p.SessionEnd(
        session_id=str(session_id),
        stats=p.SessionStats(audio_seconds=round(len(audio) / 32_000, 3)),
        recording=await recorder.close() if recorder else None,
    )
    record.observe(end)
    end = end.model_copy(update=await record.enhance())
    await record.finish(RealtimeSessionStatus.completed)
    return record


async def test_history_detail_transcript_audio_and_delete(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime", "jobs:write", "jobs:read"])
    client.headers["Authorization"] = f"Bearer {key}"
    audio = speech_pcm()
    record = await run_session(services, principal, audio)

    detail = (await client.get(f"{URL}/{record.id}")).json()
    assert detail["status"] == "completed" and detail["worker_id"] == "worker-1" and detail["protocol"] == "native"
    assert detail["audio_duration"] == pytest.approx(len(audio) / 32_000, abs=0.001)
    assert detail["recording_bytes"] == len(audio)
    assert (detail["segment_count"], detail["word_count"]) == (1, 6)
    assert detail["parameters"]["language"] == "en" and detail["ended_at"] is not None
    assert detail["enhancement"] is None and detail["enhancement_job_id"] is None

    transcript = (await client.get(f"{URL}/{record.id}/transcript")).json()
    assert transcript["text"] == "hello world this is a test" and transcript["status"] == "completed"

    response = await client.get(f"{URL}/{record.id}/audio")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert int(response.headers["content-length"]) == len(response.content) == 44 + len(audio)
    assert response.content[44:] == audio

    assert (await client.delete(f"{URL}/{record.id}")).status_code == 204
    assert (await client.get(f"{URL}/{record.id}")).json()["error"]["code"] == "session_not_found"
    assert recording.read_manifest(services.store, str(record.id)) is None
    assert recording.read_transcript(services.store, str(record.id)) is None


async def test_listing_pages_filters_and_tenancy(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime"])
    client.headers["Authorization"] = f"Bearer {key}"
    ids = [str((await run_session(services, principal, b"\0\0" * 1600, query={"retain_audio": "false"})).id) for _ in range(3)]
    crashed = await run_session(services, principal, b"\0\0" * 1600, crash=True, query={"retain_audio": "false"})

    page = (await client.get(URL, params={"limit": 2})).json()
    assert [s["id"] for s in page["sessions"]] == [str(crashed.id), ids[2]] and page["has_more"]
    rest = (await client.get(URL, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [s["id"] for s in rest["sessions"]] == [ids[1], ids[0]] and not rest["has_more"] and rest["next_cursor"] is None

    interrupted = (await client.get(URL, params={"status": "interrupted"})).json()["sessions"]
    assert [s["id"] for s in interrupted] == [str(crashed.id)] and interrupted[0]["error"].startswith("worker_lost")
    assert (await client.get(URL, params={"model": "base"})).json()["sessions"] == []
    started = interrupted[0]["started_at"]
    assert [s["id"] for s in (await client.get(URL, params={"started_before": started})).json()["sessions"]] == ids[::-1]

    for params, code in (
        ({"status": "dancing"}, "invalid_parameter"),
        ({"cursor": "garbage"}, "invalid_cursor"),
        ({"limit": 0}, "invalid_parameter"),
        ({"started_after": "yesterday"}, "invalid_parameter"),
        ({"started_after": "2026-01-01T00:00:00"}, "invalid_parameter"),
    ):
        response = await client.get(URL, params=params)
        assert response.status_code == 400 and response.json()["error"]["code"] == code, (params, response.text)

    # Not retained: the row exists, the recording and transcript do not.
    for suffix in ("audio", "transcript"):
        response = await client.get(f"{URL}/{ids[0]}/{suffix}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_retained"

    other_key, _ = await add_principal(services, ["realtime"])
    response = await client.get(f"{URL}/{ids[0]}", headers={"Authorization": f"Bearer {other_key}"})
    assert response.status_code == 404
    assert (await client.get(URL, headers={"Authorization": f"Bearer {other_key}"})).json()["sessions"] == []
    assert (await client.get(f"{URL}/not-a-uuid")).status_code == 404
    assert (await client.get(URL, headers={"Authorization": ""})).status_code == 401
    jobs_only, _ = await add_principal(services, ["jobs:read"])
    assert (await client.get(URL, headers={"Authorization": f"Bearer {jobs_only}"})).status_code == 403


async def test_active_sessions_cannot_be_deleted(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime"])
    client.headers["Authorization"] = f"Bearer {key}"
    options = hybrid.parse({}, settings=services.settings, principal=principal, model="tiny.en", language=None)
    record = await SessionRecord.create(
        services,
        principal,
        uuid.uuid4(),
        protocol="elevenlabs",
        model="tiny.en",
        params=p.SessionParams(),
        worker_id="w",
        options=options,
    )
    response = await client.delete(f"{URL}/{record.id}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "session_active"
    assert (await client.get(f"{URL}/{record.id}/audio")).json()["error"]["code"] == "recording_not_found"
    assert (await client.get(f"{URL}/{record.id}/transcript")).json() == {
        "session_id": str(record.id),
        "text": "",
        "segments": [],
        "status": "active",
    }


async def test_enhancement_submits_a_linked_batch_job(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime", "jobs:read", "jobs:write"])
    client.headers["Authorization"] = f"Bearer {key}"
    audio = speech_pcm()
    record = await run_session(
        services, principal, audio, query={"enhance_on_end": "true", "speaker_detection": "diarize", "num_speakers": "2"}
    )
    assert record.enhancement_job_id is not None and record.enhancement_error is None

    job = (await client.get(f"/v1/audio/transcriptions/{record.enhancement_job_id}")).json()
    assert job["source_session_id"] == str(record.id)
    assert job["speaker_detection"] == "diarize" and job["language"] == "en" and job["status"] == "pending"
    assert job["audio"]["duration"] == pytest.approx(len(audio) / 32_000, abs=0.001)
    assert (job["audio"]["sample_rate"], job["audio"]["channels"], job["audio"]["format"]) == (16_000, 1, "wav")
    session = (await client.get(f"{URL}/{record.id}")).json()
    assert session["enhancement_job_id"] == str(record.enhancement_job_id)
    assert session["enhancement"]["parameters"] == {"diarize": {"num_speakers": 2}}
    async with services.sessionmaker() as db:
        row = await db.scalar(select(Job).where(Job.id == record.enhancement_job_id))
        stored = services.store.get_bytes(row.audio_key)
    assert stored[44:] == audio  # the job's audio is the assembled recording

    # Deleting the session keeps the job (it has its own copy) and unlinks it.
    assert (await client.delete(f"{URL}/{record.id}")).status_code == 204
    assert (await client.get(f"/v1/audio/transcriptions/{record.enhancement_job_id}")).json()["source_session_id"] is None


async def test_interrupted_sessions_enhance_the_partial_recording(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime", "jobs:read", "jobs:write"])
    client.headers["Authorization"] = f"Bearer {key}"
    audio = speech_pcm()  # 2.7 s: the two full one-second chunks reach storage
    record = await run_session(services, principal, audio, query={"enhance_on_end": "true"}, crash=True)
    session = (await client.get(f"{URL}/{record.id}")).json()
    assert session["status"] == "interrupted" and session["recording_bytes"] == 2 * 32_000
    assert session["audio_duration"] == 2.0
    wav = (await client.get(f"{URL}/{record.id}/audio")).content
    assert wav[44:] == audio[: 2 * 32_000]
    job = (await client.get(f"/v1/audio/transcriptions/{session['enhancement_job_id']}")).json()
    assert job["audio"]["duration"] == 2.0 and job["source_session_id"] == str(record.id)


async def test_enhancement_of_an_empty_recording_is_refused_clearly(api) -> None:
    client, services = api
    key, principal = await add_principal(services, ["realtime", "jobs:write"])
    client.headers["Authorization"] = f"Bearer {key}"
    record = await run_session(services, principal, b"", query={"enhance_on_end": "true"})
    assert record.enhancement_job_id is None
    session = (await client.get(f"{URL}/{record.id}")).json()
    assert session["enhancement_error"] == "the session recorded no audio: there is nothing to enhance"
    async with services.sessionmaker() as db:
        assert await db.scalar(select(RealtimeSession.enhancement_job_id).where(RealtimeSession.id == record.id)) is None
