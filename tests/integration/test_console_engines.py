"""The console's engines, models and settings endpoints against real PostgreSQL and Redis:
heartbeats written through the shared helper, task statistics from inserted tasks, the
overview's live instances, admin-only access and masked secrets."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from support import create_database, drop_database
from test_auth_matrix import auth
from test_console import Gateway, add_key, login, request, with_cookie

from gateway.app import create_app
from gateway.services import Services
from shared import catalogue, keys, streams
from shared.bootstrap import migrate
from shared.db import Job, Task
from shared.engine_heartbeat import Heartbeat
from shared.settings import Settings

API_SECRET = "dk_settings_" + uuid.uuid4().hex
HF_SECRET = "hf_" + uuid.uuid4().hex
S3_SECRET = "s3secret" + uuid.uuid4().hex
PG_SECRET = "pg" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def own_database() -> AsyncIterator[str]:
    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
async def gw(own_database: str, redis_url: str, tmp_path_factory) -> AsyncIterator[Gateway]:
    import httpx

    # PostgreSQL trusts local connections here, so a password in the URL is accepted and unused.
    database_url = own_database.replace("://postgres@", f"://postgres:{PG_SECRET}@", 1)
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("console-engines"),
        storage_backend="fs",
        api_key=API_SECRET,
        hf_token=HF_SECRET,
        s3_secret_access_key=S3_SECRET,
        pyannote_model="pyannote/speaker-diarization-community-1",
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    admin = await add_key(services, "engines-root", ["admin"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60)
    try:
        yield Gateway(client, app, services, admin)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def add_tasks(services: Services, *, created: datetime, engine_id: str, runs: list[tuple[str, float, float]]) -> None:
    """One job created at `created` with a task per (status, queue wait s, run s), finished an hour after `created`."""
    tenant = await _tenant(services)
    job_id = uuid.uuid4()
    done = created + timedelta(hours=1)
    async with services.sessionmaker() as db, db.begin():
        db.add(
            Job(
                id=job_id,
                tenant_id=tenant,
                status="completed",
                model="tiny.en",
                speaker_detection="none",
                parameters={},
                audio_key=f"jobs/{job_id}/audio.wav",
                audio_bytes=32_000,
                audio_duration=1.0,
                audio_channels=1,
                audio_sample_rate=16_000,
                created_at=created,
                completed_at=done,
            )
        )
        await db.flush()
        for n, (status, wait, run) in enumerate(runs):
            started = done - timedelta(seconds=run)
            db.add(
                Task(
                    job_id=job_id,
                    name=f"t{n}",
                    stage=catalogue.engine(engine_id).stage,
                    engine_id=engine_id,
                    status=status,
                    queued_at=started - timedelta(seconds=wait),
                    started_at=started,
                    completed_at=done,
                )
            )


async def _tenant(services: Services) -> uuid.UUID:
    from sqlalchemy import select

    from shared.db import Tenant

    async with services.sessionmaker() as db:
        tenant = await db.scalar(select(Tenant).where(Tenant.name == "engines-root"))
    assert tenant is not None
    return tenant.id


async def test_engines_show_heartbeats_queues_and_task_statistics(gw: Gateway) -> None:
    redis = gw.services.redis
    beat = Heartbeat(redis, "prepare", "prepare-host-1", interval_s=1, ttl_s=60)
    await beat.beat()
    beat.count(failed=False)
    await beat.task_started("task-42")
    stream = keys.engine_stream("prepare")
    await streams.ensure_group(redis, stream, keys.ENGINE_GROUP)
    for n in range(3):
        await streams.publish(redis, stream, {"task": n})
    # Lag on a stream no instance reads: the console must be able to flag it.
    await streams.ensure_group(redis, keys.engine_stream("merge"), keys.ENGINE_GROUP)
    await streams.publish(redis, keys.engine_stream("merge"), {"task": 0})

    now = datetime.now(UTC)
    await add_tasks(
        gw.services,
        created=now - timedelta(hours=2),
        engine_id="faster-whisper",
        runs=[("completed", 0.5, 1.0), ("completed", 0.5, 2.0), ("completed", 0.5, 10.0), ("failed", 0.5, 3.0)],
    )
    # Finished 29 h ago: outside the 24 h window.
    await add_tasks(gw.services, created=now - timedelta(hours=30), engine_id="faster-whisper", runs=[("completed", 9.0, 99.0)])

    response = await request(gw, "GET", "/v1/console/engines", headers=auth(gw.admin))
    assert response.status_code == 200, response.text
    body = response.json()
    engines = {e["engine_id"]: e for e in body["engines"]}
    assert list(engines) == [e.id for e in sorted(catalogue.ENGINES.values(), key=lambda e: list(catalogue.Stage).index(e.stage))]

    prepare = engines["prepare"]
    [instance] = prepare["instances"]
    assert instance["instance_id"] == "prepare-host-1" and instance["current_task_id"] == "task-42"
    assert instance["tasks_done"] == 1 and instance["tasks_failed"] == 0
    assert 0 <= instance["heartbeat_age_seconds"] <= 60 and instance["current_task_started_at"] is not None
    assert prepare["queue"]["stream"] == stream and prepare["queue"]["length"] == 3 and prepare["queue"]["lag"] in (3, None)
    assert prepare["default_for_stage"] and not prepare["selectable"]

    merge = engines["merge"]
    assert merge["instances"] == [] and merge["queue"]["length"] == 1  # queued work, nobody to take it

    fw = engines["faster-whisper"]
    assert fw["instances"] == [] and fw["queue"] is None  # never used here
    assert fw["word_timestamps"] and fw["gpu"] and fw["stage"] == "transcribe"
    stats = fw["last_24h"]
    assert (stats["completed"], stats["failed"]) == (3, 1)
    assert stats["mean_run_seconds"] == pytest.approx(13 / 3, abs=0.01)
    assert stats["p95_run_seconds"] == pytest.approx(9.2, abs=0.01)  # linear interpolation of 1, 2, 10
    assert stats["mean_queue_wait_seconds"] == pytest.approx(0.5, abs=0.01)
    assert engines["merge"]["last_24h"] == {
        "completed": 0,
        "failed": 0,
        "mean_run_seconds": None,
        "p95_run_seconds": None,
        "mean_queue_wait_seconds": None,
    }
    assert (
        engines["pyannote-4.0"]["unconfigured"] is None and engines["pyannote-4.0"]["weights_setting"] == "DALSTON_PYANNOTE_MODEL"
    )
    assert "DALSTON_ALIGN_MODEL" in engines["phoneme-align"]["unconfigured"]
    assert body["realtime"]["status"] == "unavailable" and body["realtime"]["workers"] == []

    # The overview counts the same heartbeats.
    overview = (await request(gw, "GET", "/v1/console/overview", headers=auth(gw.admin))).json()
    queues = {q["engine_id"]: q for q in overview["engines"]}
    assert queues["prepare"]["live_instances"] == 1 and queues["merge"]["live_instances"] == 0

    # Gone on shutdown: no longer listed.
    await beat.remove()
    body = (await request(gw, "GET", "/v1/console/engines", headers=auth(gw.admin))).json()
    assert next(e for e in body["engines"] if e["engine_id"] == "prepare")["instances"] == []


async def test_models_list_the_registry_weights_and_realtime(gw: Gateway) -> None:
    from gateway.realtime.proxy import registry

    await registry(gw.services).heartbeat(
        "rt-1", url="ws://127.0.0.1:9", capacity=2, active=0, models=["tiny.en"], status="ready", ttl_ms=60_000
    )
    response = await request(gw, "GET", "/v1/console/models", headers=auth(gw.admin))
    assert response.status_code == 200, response.text
    body = response.json()
    whisper = {m["id"]: m for m in body["whisper"]}
    tiny = whisper["tiny.en"]
    assert tiny["default"] and tiny["english_only"] and "whisper-1" in tiny["aliases"] and tiny["source_kind"] == "bundled"
    assert tiny["present_on_gateway"] is True and tiny["realtime_workers"] == ["rt-1"]
    assert [(e["engine_id"], e["word_timestamps"]) for e in tiny["batch_engines"]] == [
        ("faster-whisper", True),
        ("whisperx-full", True),
    ]
    weights = {w["engine_id"]: w for w in body["engine_weights"]}
    assert (
        weights["pyannote-4.0"]["configured"] and weights["pyannote-4.0"]["value"] == "pyannote/speaker-diarization-community-1"
    )
    assert not weights["phoneme-align"]["configured"] and weights["phoneme-align"]["setting"] == "DALSTON_ALIGN_MODEL"
    realtime = {m["id"]: m for m in body["realtime"]}
    assert realtime["tiny.en"]["backend"] == "faster-whisper" and realtime["tiny.en"]["workers"] == ["rt-1"]
    assert realtime["parakeet-tdt-0.6b-v2"]["backend"] == "parakeet" and realtime["parakeet-tdt-0.6b-v2"]["variants"] == ["fast"]
    assert realtime["parakeet-tdt-0.6b-v2"]["weights"] is None and realtime["parakeet-tdt-0.6b-v2"]["workers"] == []


async def test_settings_are_admin_only_and_never_show_a_secret(gw: Gateway) -> None:
    response = await request(gw, "GET", "/v1/console/settings", headers=auth(gw.admin))
    assert response.status_code == 200, response.text
    text = response.text
    for secret in (API_SECRET, HF_SECRET, S3_SECRET, PG_SECRET):
        assert secret not in text
    settings = {s["name"]: s for g in response.json()["groups"] for s in g["settings"]}
    assert settings["api_key"] == {
        "name": "api_key",
        "env": "DALSTON_API_KEY",
        "value": None,
        "secret": True,
        "is_set": True,
        "source": "set",
    }
    assert settings["hf_token"]["secret"] and settings["s3_secret_access_key"]["is_set"]
    assert not settings["s3_access_key_id"]["is_set"] and settings["s3_access_key_id"]["secret"]
    assert settings["database_url"]["value"].startswith("postgresql://postgres:••••••@")
    assert settings["port"]["source"] == "default" and settings["port"]["value"] == 8000 and not settings["port"]["secret"]
    assert settings["storage_backend"]["source"] == "set" and settings["storage_backend"]["env"] == "DALSTON_STORAGE_BACKEND"
    # A session made from the admin key sees the same.
    cookie, _ = await login(gw, gw.admin)
    assert json.loads((await request(gw, "GET", "/v1/console/settings", headers=with_cookie(cookie))).text) == response.json()


async def test_non_admin_keys_are_refused(gw: Gateway) -> None:
    key = await add_key(gw.services, "engines-user", ["jobs:read", "jobs:write", "realtime", "webhooks"])
    for path in ("/v1/console/engines", "/v1/console/models", "/v1/console/settings"):
        response = await request(gw, "GET", path, headers=auth(key))
        assert response.status_code == 403, (path, response.text)
        assert API_SECRET not in response.text
        assert (await request(gw, "GET", path)).status_code == 401
