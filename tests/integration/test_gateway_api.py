"""Native batch API against real PostgreSQL, Redis and a filesystem object store.

Also the gateway as it runs: `python -m gateway` under uvicorn, waiters, upload memory, 500s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from support import free_port, wait_for_port

from gateway.app import create_app
from gateway.services import Services
from gateway.waiting import wait_for_job
from shared import keys
from shared.bootstrap import generate_key, hash_key
from shared.db import ApiKey, Job, Task, Tenant
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SHORT_WAV = FIXTURES / "short_en.wav"
STEREO_WAV = FIXTURES / "stereo_en.wav"
URL = "/v1/audio/transcriptions"

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path, storage_backend="fs")


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[tuple[httpx.AsyncClient, Services]]]]:
    """Start an app (lifespan included) with optional settings overrides."""
    stack: list = []

    async def start(**overrides) -> tuple[httpx.AsyncClient, Services]:
        app = create_app(settings.model_copy(update=overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        stack.append((lifespan, client))
        return client, app.state.services

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def add_key(services: Services, *, tenant: str | None = None, scopes: list[str] | None = None, **fields) -> str:
    key = generate_key()
    async with services.sessionmaker() as db, db.begin():
        name = tenant or f"tenant-{uuid.uuid4().hex[:8]}"
        row = await db.scalar(select(Tenant).where(Tenant.name == name))
        if row is None:
            row = Tenant(name=name)
            db.add(row)
            await db.flush()
        db.add(
            ApiKey(
                tenant_id=row.id,
                name="test",
                prefix=key[:10],
                key_hash=hash_key(key),
                scopes=scopes if scopes is not None else ["jobs:read", "jobs:write"],
                **fields,
            )
        )
    return key


@pytest.fixture
async def api(make_client) -> tuple[httpx.AsyncClient, Services]:
    client, services = await make_client()
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    return client, services


async def submit(
    client: httpx.AsyncClient, path: Path = SHORT_WAV, *, content: bytes | None = None, filename: str | None = None, **data
) -> httpx.Response:
    body = path.read_bytes() if content is None else content
    return await client.post(URL, files={"file": (filename or path.name, body, "application/octet-stream")}, data=data)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


# --- ops and auth -------------------------------------------------------------------


async def test_ops_endpoints_are_open(make_client) -> None:
    client, _ = await make_client()
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "dalston_gateway_http_requests_total" in metrics.text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_request_id_is_echoed_or_generated(make_client) -> None:
    client, _ = await make_client()
    assert (await client.get("/health", headers={"X-Request-ID": "abc-123"})).headers["x-request-id"] == "abc-123"
    generated = (await client.get("/health")).headers["x-request-id"]
    assert len(generated) == 32


async def test_auth(make_client) -> None:
    client, services = await make_client()
    key = await add_key(services)
    assert_error(await client.get(URL), 401, "missing_api_key")
    assert_error(await client.get(URL, headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
    assert_error(await client.get(URL, headers={"xi-api-key": "nope"}), 401, "invalid_api_key")
    assert (await client.get(URL, headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert (await client.get(URL, headers={"xi-api-key": key})).status_code == 200
    # An empty xi-api-key counts as absent, so a bearer beside it still works.
    assert (await client.get(URL, headers={"xi-api-key": "", "Authorization": f"Bearer {key}"})).status_code == 200

    async with services.sessionmaker() as db:
        row = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    assert row.last_used_at is not None


async def test_revoked_expired_and_scopes(make_client) -> None:
    client, services = await make_client()
    revoked = await add_key(services, revoked_at=datetime.now(UTC))
    expired = await add_key(services, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    reader = await add_key(services, scopes=["jobs:read"])
    admin = await add_key(services, scopes=["admin"])
    assert_error(await client.get(URL, headers={"xi-api-key": revoked}), 401, "invalid_api_key")
    assert_error(await client.get(URL, headers={"xi-api-key": expired}), 401, "invalid_api_key")
    assert (await client.get(URL, headers={"xi-api-key": reader})).status_code == 200
    client.headers["xi-api-key"] = reader
    assert_error(await submit(client), 403, "insufficient_scope")
    client.headers["xi-api-key"] = admin
    assert (await submit(client)).status_code == 201


# --- submit and read ----------------------------------------------------------------


async def test_submit_creates_row_event_and_object(api) -> None:
    client, services = api
    response = await submit(client, language="en")
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "pending"
    assert job["model"] == "tiny.en" and job["language"] == "en" and job["speaker_detection"] == "none"
    assert job["audio"]["filename"] == "short_en.wav"
    assert job["audio"]["bytes"] == SHORT_WAV.stat().st_size
    assert job["audio"]["channels"] == 1 and job["audio"]["sample_rate"] == 22050 and job["audio"]["format"] == "wav"
    assert 2.7 < job["audio"]["duration"] < 2.8
    assert job["progress"] == 0.0 and job["stages"] == [] and job["transcript"] is None
    assert job["created_at"]

    async with services.sessionmaker() as db:
        row = await db.get(Job, uuid.UUID(job["id"]))
    assert row.status == "pending" and row.audio_key == f"jobs/{job['id']}/audio/original.wav"
    assert services.store.get_bytes(row.audio_key) == SHORT_WAV.read_bytes()

    events = await services.redis.xrange(keys.EVENTS_STREAM)
    created = [json.loads(fields["data"]) for _, fields in events]
    assert any(e["type"] == "job.created" and e["job_id"] == job["id"] for e in created)

    got = await client.get(f"{URL}/{job['id']}")
    assert got.status_code == 200
    assert {k: got.json()[k] for k in ("id", "status", "audio")} == {k: job[k] for k in ("id", "status", "audio")}


async def test_submit_stereo_per_channel(api) -> None:
    client, _ = api
    response = await submit(client, STEREO_WAV, speaker_detection="per_channel")
    assert response.status_code == 201, response.text
    assert response.json()["speaker_detection"] == "per_channel" and response.json()["audio"]["channels"] == 2


async def test_other_tenants_jobs_are_invisible(api, make_client) -> None:
    client, services = api
    job_id = (await submit(client)).json()["id"]
    other = await add_key(services)
    assert_error(await client.get(f"{URL}/{job_id}", headers={"Authorization": f"Bearer {other}"}), 404, "job_not_found")
    listed = await client.get(URL, headers={"Authorization": f"Bearer {other}"})
    assert job_id not in [j["id"] for j in listed.json()["jobs"]]


async def test_get_shows_stages_in_dag_order_and_transcript(api) -> None:
    client, services = api
    job_id = uuid.UUID((await submit(client)).json()["id"])
    now = datetime.now(UTC)
    transcript = Transcript(
        text="hello world",
        language="en",
        language_probability=0.98,
        duration=2.7,
        segments=[Segment(id=0, start=0.0, end=2.7, text="hello world")],
        words=[Word(text="hello", start=0.1, end=0.5, probability=0.9), Word(text="world", start=0.6, end=1.0, probability=0.8)],
        model="tiny.en",
    )
    services.store.put_bytes(f"jobs/{job_id}/transcript.json", transcript.model_dump_json().encode())
    async with services.sessionmaker() as db, db.begin():
        # Inserted out of order on purpose: the API sorts by dependencies.
        for name, stage, deps in [
            ("merge", "merge", ["prepare", "transcribe"]),
            ("transcribe", "transcribe", ["prepare"]),
            ("prepare", "prepare", []),
        ]:
            db.add(
                Task(
                    job_id=job_id,
                    name=name,
                    stage=stage,
                    engine_id=stage,
                    depends_on=deps,
                    config={},
                    required=True,
                    status="completed",
                    attempt=1,
                    max_retries=2,
                    started_at=now,
                    completed_at=now + timedelta(milliseconds=250),
                )
            )
        job = await db.get(Job, job_id)
        job.status, job.started_at, job.completed_at = "completed", now, now + timedelta(seconds=1)
        job.transcript_key = f"jobs/{job_id}/transcript.json"

    body = (await client.get(f"{URL}/{job_id}")).json()
    assert body["status"] == "completed" and body["progress"] == 1.0
    assert [s["name"] for s in body["stages"]] == ["prepare", "transcribe", "merge"]
    assert body["stages"][0] == {
        "name": "prepare",
        "stage": "prepare",
        "engine_id": "prepare",
        "status": "completed",
        "attempt": 1,
        "queued_at": None,
        "started_at": body["stages"][0]["started_at"],
        "completed_at": body["stages"][0]["completed_at"],
        "duration_ms": 250.0,
        "error": None,
    }
    assert Transcript.model_validate(body["transcript"]) == transcript
    assert body["warnings"] == []

    # The transcript object vanishes from storage: the job says so instead of a bare null.
    services.store.delete_prefix(f"jobs/{job_id}/transcript.json")
    gone = (await client.get(f"{URL}/{job_id}")).json()
    assert gone["status"] == "completed" and gone["transcript"] is None
    assert len(gone["warnings"]) == 1 and gone["warnings"][0].startswith("transcript_missing: ")
    assert "missing from storage" in gone["warnings"][0]
    assert_error(await client.get(f"{URL}/{job_id}/export/txt"), 404, "transcript_not_found")


async def test_list_pagination_and_filter(make_client) -> None:
    client, services = await make_client()
    client.headers["xi-api-key"] = await add_key(services)
    ids = [(await submit(client)).json()["id"] for _ in range(3)]

    first = (await client.get(URL, params={"limit": 2})).json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    assert first["has_more"] is True and first["next_cursor"]
    second = (await client.get(URL, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [j["id"] for j in second["jobs"]] == [ids[0]]
    assert second == {"jobs": second["jobs"], "next_cursor": None, "has_more": False}
    assert set(second["jobs"][0]) == {
        "id",
        "status",
        "model",
        "language",
        "speaker_detection",
        "audio",
        "error",
        "warnings",
        "source_session_id",
        "created_at",
        "started_at",
        "completed_at",
    }

    await client.post(f"{URL}/{ids[1]}/cancel")
    cancelled = (await client.get(URL, params={"status": "cancelled"})).json()
    assert [j["id"] for j in cancelled["jobs"]] == [ids[1]]
    pending = (await client.get(URL, params={"status": "pending"})).json()
    assert [j["id"] for j in pending["jobs"]] == [ids[2], ids[0]]

    assert_error(await client.get(URL, params={"cursor": "not-a-cursor"}), 400, "invalid_cursor")
    assert_error(await client.get(URL, params={"cursor": base64.urlsafe_b64encode(b"x|y").decode()}), 400, "invalid_cursor")
    assert_error(await client.get(URL, params={"status": "done"}), 400, "invalid_parameter")
    error = assert_error(await client.get(URL, params={"limit": 0}), 400, "invalid_parameter")
    assert "limit" in error["message"]
    assert_error(await client.get(URL, params={"limit": 101}), 400, "invalid_parameter")


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"", "filename": "empty.wav"}, 400, "empty_file"),
        ({"content": bytes(range(256)) * 40, "filename": "noise.wav"}, 400, "invalid_audio"),
        ({"content": b"hello, this is not audio\n" * 20, "filename": "notes.wav"}, 400, "invalid_audio"),
        ({"content": (FIXTURES / "speech_en.mp3").read_bytes()[:400], "filename": "cut.mp3"}, 400, "invalid_audio"),
        ({"model": "large-v9"}, 400, "unknown_model"),
        ({"language": "english"}, 400, "invalid_language"),
        ({"language": "de"}, 400, "unsupported_language"),
        ({"speaker_detection": "magic"}, 400, "invalid_parameter"),
        ({"speaker_detection": "diarize", "diarizer": "pyannote-4.0"}, 400, "feature_unavailable"),  # no weights configured
        ({"speaker_detection": "diarize", "align": "true"}, 400, "feature_unavailable"),
        ({"speaker_detection": "diarize", "num_speakers": "40"}, 400, "invalid_parameter"),
        ({"speaker_detection": "diarize", "num_speakers": "2", "max_speakers": "3"}, 400, "invalid_parameter"),
        ({"speaker_detection": "none", "min_speakers": "2"}, 400, "invalid_parameter"),
        ({"speaker_detection": "diarize", "pipeline": "fast"}, 400, "invalid_parameter"),
        ({"speaker_detection": "per_channel"}, 400, "invalid_parameter"),
    ],
)
async def test_bad_submissions(api, kwargs: dict, status: int, code: str) -> None:
    client, _ = api
    error = assert_error(await submit(client, **kwargs), status, code)
    if code == "unknown_model":
        assert "tiny.en" in error["message"]
    # The key's tenant is fresh, so any job listed would have come from this request.
    assert (await client.get(URL)).json()["jobs"] == []


async def test_missing_file_and_wrong_content_type(api) -> None:
    client, _ = api
    assert_error(await client.post(URL, files={"other": ("a.txt", b"x")}, data={"model": "tiny.en"}), 400, "missing_file")
    assert_error(await client.post(URL, json={"file": "x"}), 415, "invalid_content_type")
    truncated = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    response = await client.post(URL, content=truncated, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_error(response, 400, "malformed_multipart")


async def test_upload_size_and_duration_limits(make_client, tmp_path: Path) -> None:
    client, services = await make_client(max_upload_bytes=10_000)
    client.headers["xi-api-key"] = await add_key(services)
    # Streamed past the limit (Content-Length alone does not reveal it).
    assert_error(await submit(client), 413, "file_too_large")
    # Refused from Content-Length before reading the body.
    assert_error(await submit(client, STEREO_WAV), 413, "file_too_large")

    client, services = await make_client(max_audio_seconds=1.0)
    client.headers["xi-api-key"] = await add_key(services)
    assert_error(await submit(client), 413, "audio_too_long")
    assert not list((tmp_path / "storage").rglob("original*"))


async def test_unknown_and_malformed_ids(api) -> None:
    client, _ = api
    for path in (f"{URL}/{uuid.uuid4()}", f"{URL}/not-a-uuid", f"{URL}/{uuid.uuid4()}/cancel"):
        method = client.post if path.endswith("cancel") else client.get
        assert_error(await method(path), 404, "job_not_found")
    assert_error(await client.delete(f"{URL}/not-a-uuid"), 404, "job_not_found")
    assert_error(await client.get("/v1/nothing-here"), 404, "not_found")


# --- cancel and delete --------------------------------------------------------------


async def test_cancel_then_delete(api, redis_url: str) -> None:
    client, services = api
    job = (await submit(client)).json()
    job_id = uuid.UUID(job["id"])
    async with services.sessionmaker() as db, db.begin():
        for name, status, deps in [
            ("prepare", "ready", []),
            ("transcribe", "pending", ["prepare"]),
            ("merge", "pending", ["prepare", "transcribe"]),
        ]:
            db.add(
                Task(
                    job_id=job_id,
                    name=name,
                    stage=name,
                    engine_id=name,
                    depends_on=deps,
                    config={},
                    required=True,
                    status=status,
                    attempt=0,
                    max_retries=2,
                )
            )

    assert_error(await client.delete(f"{URL}/{job_id}"), 409, "job_not_terminal")

    pubsub = services.redis.pubsub()
    await pubsub.subscribe(keys.job_done_channel(str(job_id)))
    cancelled = await client.post(f"{URL}/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["completed_at"]
    assert [s["status"] for s in body["stages"]] == ["skipped", "skipped", "skipped"]
    assert await services.redis.get(keys.job_cancelled(str(job_id))) == "cancelled"  # the engines' fence
    assert 0 < await services.redis.ttl(keys.job_cancelled(str(job_id))) <= 86400
    events = [json.loads(f["data"]) for _, f in await services.redis.xrange(keys.EVENTS_STREAM)]
    assert {"type": "job.cancelled", "job_id": str(job_id)}.items() <= next(
        e for e in events if e["type"] == "job.cancelled" and e["job_id"] == str(job_id)
    ).items()
    message = None
    for _ in range(20):  # the subscribe confirmation comes first and reads as None
        message = message or await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
    assert json.loads(message["data"]) == {"job_id": str(job_id), "status": "cancelled"}
    await pubsub.aclose()

    # Cancelling again is idempotent.
    assert (await client.post(f"{URL}/{job_id}/cancel")).json()["status"] == "cancelled"

    assert services.store.exists(f"jobs/{job_id}/audio/original.wav")
    deleted = await client.delete(f"{URL}/{job_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert not services.store.exists(f"jobs/{job_id}/audio/original.wav")
    assert not (services.settings.storage_dir / "jobs" / str(job_id)).exists()
    # Fenced as deleted: a task still running discards everything it writes under the job.
    assert await services.redis.get(keys.job_cancelled(str(job_id))) == "deleted"
    assert_error(await client.get(f"{URL}/{job_id}"), 404, "job_not_found")
    async with services.sessionmaker() as db:
        assert (await db.scalars(select(Task).where(Task.job_id == job_id))).all() == []


async def test_cancel_of_finished_job_conflicts(api) -> None:
    client, services = api
    job_id = uuid.UUID((await submit(client)).json()["id"])
    async with services.sessionmaker() as db, db.begin():
        (await db.get(Job, job_id)).status = "failed"
    assert_error(await client.post(f"{URL}/{job_id}/cancel"), 409, "job_not_cancellable")
    assert (await client.delete(f"{URL}/{job_id}")).status_code == 204


# --- runtime ------------------------------------------------------------------------


@pytest.fixture
async def running(settings: Settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        client.headers["xi-api-key"] = await add_key(app.state.services)
        yield app, client
        await client.aclose()


def test_python_m_gateway_serves_uploads(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DALSTON_DATABASE_URL": settings.database_url,
        "DALSTON_REDIS_URL": settings.redis_url,
        "DALSTON_DATA_DIR": str(tmp_path),
        "DALSTON_MAX_UPLOAD_BYTES": "200000",
        "DALSTON_API_KEY": "",
    }
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port)], cwd=ROOT, env=env)
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/ready").json()["status"] == "ready"

        async def key() -> str:
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                return await add_key(app.state.services)

        headers = {"Authorization": f"Bearer {asyncio.run(key())}"}
        with SHORT_WAV.open("rb") as f:
            created = httpx.post(f"{base}{URL}", headers=headers, files={"file": ("short.wav", f)})
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}{URL}/{created.json()['id']}", headers=headers).json()["status"] == "pending"
        # Over the limit while streaming: the 413 still reaches the client.
        big = (ROOT / "tests/fixtures/speech_en.wav").read_bytes()
        assert_error(httpx.post(f"{base}{URL}", headers=headers, files={"file": ("big.wav", big)}), 413, "file_too_large")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_upload_memory_stays_flat(running, tmp_path: Path) -> None:
    _, client = running
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:  # ~24 MB of 16 kHz silence
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(2 * 16_000 * 750))

    async def chunks():
        with path.open("rb") as f:
            while chunk := f.read(256 * 1024):
                yield chunk

    boundary = "dalston-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body():
        yield head
        async for chunk in chunks():
            yield chunk
        yield tail

    tracemalloc.start()
    try:
        response = await client.post(URL, content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.text
    assert response.json()["audio"]["bytes"] == path.stat().st_size
    assert peak < 8 * 1024 * 1024, f"peak Python allocations {peak} bytes for a {path.stat().st_size}-byte upload"


async def test_unhandled_error_is_a_500_in_the_error_shape(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            response = await client.get("/boom")
    error = assert_error(response, 500, "internal_error")
    assert "kaboom" not in error["message"] and response.headers["x-request-id"] in error["message"]


async def test_wait_for_job(running) -> None:
    app, client = running
    services = app.state.services
    job_id = (await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())})).json()["id"]

    with pytest.raises(TimeoutError):
        await wait_for_job(services.redis, services.sessionmaker, job_id, timeout=0.3)

    async def finish_later() -> None:
        await asyncio.sleep(0.3)
        async with services.sessionmaker() as db, db.begin():
            await db.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(status="completed"))
        await services.redis.publish(keys.job_done_channel(job_id), json.dumps({"job_id": job_id, "status": "completed"}))

    finisher = asyncio.create_task(finish_later())
    job = await wait_for_job(services.redis, services.sessionmaker, job_id, timeout=5)
    await finisher
    assert job.status == "completed"
    # Already terminal: returns at once.
    assert (await wait_for_job(services.redis, services.sessionmaker, job_id, timeout=0.1)).status == "completed"
    # The cancel endpoint wakes waiters too.
    other = (await client.post(URL, files={"file": ("b.wav", SHORT_WAV.read_bytes())})).json()["id"]
    waiter = asyncio.create_task(wait_for_job(services.redis, services.sessionmaker, other, timeout=5))
    await asyncio.sleep(0.2)
    await client.post(f"{URL}/{other}/cancel")
    assert (await waiter).status == "cancelled"
