"""The console's gateway side: sessions made from API keys (cookie, CSRF, same-origin
WebSockets, revocation, server-side expiry), the overview aggregates and job audio.

A database of its own: the overview's admin view counts every tenant's jobs there are.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from support import create_database, drop_database
from test_auth_matrix import add_job, auth, ws_attempt

from gateway.app import create_app
from gateway.realtime.proxy import registry
from gateway.services import Services
from shared import keys, streams
from shared.bootstrap import generate_key, hash_key, key_prefix, migrate
from shared.db import ApiKey, Job, Tenant
from shared.settings import Settings

COOKIE = "dalston_session"


@dataclass
class Gateway:
    client: httpx.AsyncClient
    app: Any
    services: Services
    admin: str


@pytest.fixture(scope="module")
def own_database() -> AsyncIterator[str]:
    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
async def gw(own_database: str, redis_url: str, tmp_path_factory) -> AsyncIterator[Gateway]:
    settings = Settings(
        database_url=own_database, redis_url=redis_url, data_dir=tmp_path_factory.mktemp("console"), storage_backend="fs"
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    admin = await add_key(services, "console-root", ["admin"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60)
    try:
        yield Gateway(client, app, services, admin)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def add_key(services: Services, tenant_name: str, scopes: list[str]) -> str:
    """A key for `tenant_name` (created when new) with `scopes`."""
    from sqlalchemy import select

    secret = generate_key()
    async with services.sessionmaker() as db, db.begin():
        tenant = await db.scalar(select(Tenant).where(Tenant.name == tenant_name))
        if tenant is None:
            tenant = Tenant(name=tenant_name)
            db.add(tenant)
            await db.flush()
        db.add(
            ApiKey(
                tenant_id=tenant.id,
                name=f"{tenant_name} {'+'.join(scopes)}",
                prefix=key_prefix(secret),
                key_hash=hash_key(secret),
                scopes=scopes,
            )
        )
    return secret


async def key_row(services: Services, secret: str) -> ApiKey:
    from sqlalchemy import select

    async with services.sessionmaker() as db:
        row = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    assert row is not None
    return row


def set_cookie(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def login(gw: Gateway, key: str, **headers: str) -> tuple[str, dict]:
    """Log in; returns the cookie value and the session JSON (the client keeps no cookies:
    each test says which cookie a request carries)."""
    response = await gw.client.post("/v1/console/session", json={"api_key": key}, headers=headers)
    gw.client.cookies.clear()
    assert response.status_code == 201, response.text
    return set_cookie(response)[COOKIE].value, response.json()


def with_cookie(cookie: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={cookie}", **headers}


async def request(gw: Gateway, method: str, url: str, **kwargs: Any) -> httpx.Response:
    response = await gw.client.request(method, url, **kwargs)
    gw.client.cookies.clear()
    return response


async def tenant_id_of(gw: Gateway, key: str) -> uuid.UUID:
    return (await key_row(gw.services, key)).tenant_id


# -- sessions ---------------------------------------------------------------------------


async def test_login_sets_a_strict_http_only_cookie(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-a", ["jobs:read", "jobs:write"])
    response = await gw.client.post("/v1/console/session", json={"api_key": key})
    gw.client.cookies.clear()
    assert response.status_code == 201, response.text
    body = response.json()
    row = await key_row(gw.services, key)
    assert body["key_id"] == str(row.id) and body["tenant_id"] == str(row.tenant_id) and body["tenant_name"] == "console-a"
    assert body["key_name"] == row.name and body["scopes"] == ["jobs:read", "jobs:write"] and len(body["csrf_token"]) >= 32
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=7, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=8)

    morsel = set_cookie(response)[COOKIE]
    assert len(morsel.value) >= 43 and morsel.value not in response.text
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/" and not morsel["secure"]
    assert morsel["max-age"] == str(8 * 3600)
    # The API key appears nowhere: not in the answer, the cookie, or Redis.
    assert key not in response.text and key not in response.headers.get("set-cookie", "")
    stored_key = keys.console_session(hashlib.sha256(morsel.value.encode()).hexdigest())
    stored = await gw.services.redis.get(stored_key)
    assert stored is not None and key not in stored and morsel.value not in stored and hash_key(key) not in stored
    assert 8 * 3600 - 5 < await gw.services.redis.ttl(stored_key) <= 8 * 3600

    # Behind a TLS-terminating proxy the cookie is Secure.
    tls = await gw.client.post("/v1/console/session", json={"api_key": key}, headers={"X-Forwarded-Proto": "https"})
    gw.client.cookies.clear()
    assert tls.status_code == 201 and set_cookie(tls)[COOKIE]["secure"]

    # The session reads back the same, by cookie only.
    cookie = morsel.value
    again = await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie))
    assert again.status_code == 200 and again.json() == body
    no_cookie = await request(gw, "GET", "/v1/console/session", headers=auth(key))
    assert no_cookie.status_code == 401 and no_cookie.json()["error"]["code"] == "missing_session"


async def test_bad_logins(gw: Gateway) -> None:
    bogus = generate_key()
    response = await request(gw, "POST", "/v1/console/session", json={"api_key": bogus})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert bogus not in response.text and "set-cookie" not in response.headers
    failures = (
        await request(gw, "GET", "/v1/audit", headers=auth(gw.admin), params={"action": "auth.failed", "limit": 200})
    ).json()["events"]
    assert any(e["details"] == {"reason": "unknown_key", "path": "/v1/console/session"} for e in failures)

    for body in ({}, {"api_key": ""}, {"api_key": 7}, {"api_key": "x" * 600}, ["dk_x"]):
        response = await request(gw, "POST", "/v1/console/session", json=body)
        assert response.status_code == 400, (body, response.text)
    for content in (b"", b"{not json"):
        response = await request(gw, "POST", "/v1/console/session", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parameter", response.text

    revoked = await add_key(gw.services, "console-a", ["jobs:read"])
    row = await key_row(gw.services, revoked)
    async with gw.services.sessionmaker() as db, db.begin():
        await db.execute(update(ApiKey).where(ApiKey.id == row.id).values(revoked_at=datetime.now(UTC)))
    response = await request(gw, "POST", "/v1/console/session", json={"api_key": revoked})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


async def test_cookie_authenticates_the_api_with_csrf_on_writes(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-b", ["jobs:read", "jobs:write"])
    tenant = await tenant_id_of(gw, key)
    cookie, session = await login(gw, key)
    job = await add_job(gw.services, tenant)

    listing = await request(gw, "GET", "/v1/audio/transcriptions", headers=with_cookie(cookie))
    assert listing.status_code == 200 and job in listing.text
    me = await request(gw, "GET", "/v1/me", headers=with_cookie(cookie))
    assert me.status_code == 200 and me.json()["via"] == "session"

    # A write with the cookie alone is refused: another site's form could send the cookie.
    refused = await request(gw, "DELETE", f"/v1/audio/transcriptions/{job}", headers=with_cookie(cookie))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert "X-CSRF-Token" in refused.json()["error"]["message"]
    wrong = await request(
        gw, "DELETE", f"/v1/audio/transcriptions/{job}", headers=with_cookie(cookie, **{"X-CSRF-Token": "nope"})
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf_failed"
    assert (await request(gw, "GET", f"/v1/audio/transcriptions/{job}", headers=with_cookie(cookie))).status_code == 200
    deleted = await request(
        gw, "DELETE", f"/v1/audio/transcriptions/{job}", headers=with_cookie(cookie, **{"X-CSRF-Token": session["csrf_token"]})
    )
    assert deleted.status_code == 204, deleted.text

    # A key in a header is unaffected by the cookie and needs no CSRF token.
    other = await add_job(gw.services, tenant)
    by_key = await request(gw, "DELETE", f"/v1/audio/transcriptions/{other}", headers={**with_cookie(cookie), **auth(key)})
    assert by_key.status_code == 204, by_key.text
    # A bad key in a header is not rescued by a good cookie.
    bad = await request(gw, "GET", "/v1/audio/transcriptions", headers={**with_cookie(cookie), **auth(generate_key())})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
    # A garbage cookie is a 401 that clears it.
    garbage = await request(gw, "GET", "/v1/audio/transcriptions", headers=with_cookie("not-a-session"))
    assert garbage.status_code == 401 and garbage.json()["error"]["code"] == "invalid_session"
    assert set_cookie(garbage)[COOKIE]["max-age"] == "0"


async def test_session_is_bound_to_its_tenant_and_scopes(gw: Gateway) -> None:
    reader = await add_key(gw.services, "console-c", ["jobs:read"])
    other_tenant = await tenant_id_of(gw, await add_key(gw.services, "console-d", ["jobs:read"]))
    mine = await add_job(gw.services, await tenant_id_of(gw, reader))
    theirs = await add_job(gw.services, other_tenant)
    cookie, session = await login(gw, reader)
    assert session["scopes"] == ["jobs:read"]

    listing = await request(gw, "GET", "/v1/audio/transcriptions", headers=with_cookie(cookie))
    assert mine in listing.text and theirs not in listing.text
    hidden = await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "job_not_found"

    # A read-only key's session cannot write, CSRF token or not.
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    refused = await request(gw, "DELETE", f"/v1/audio/transcriptions/{mine}", headers=with_cookie(cookie, **csrf))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    admin_only = await request(gw, "GET", "/v1/keys", headers=with_cookie(cookie))
    assert admin_only.status_code == 403

    # Scopes are the key's as they are now: a change takes effect on the next request.
    row = await key_row(gw.services, reader)
    async with gw.services.sessionmaker() as db, db.begin():
        await db.execute(update(ApiKey).where(ApiKey.id == row.id).values(scopes=["jobs:read", "jobs:write"]))
    now = await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie))
    assert now.json()["scopes"] == ["jobs:read", "jobs:write"]
    deleted = await request(gw, "DELETE", f"/v1/audio/transcriptions/{mine}", headers=with_cookie(cookie, **csrf))
    assert deleted.status_code == 204


async def test_logout_ends_the_session(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-e", ["jobs:read"])
    cookie, session = await login(gw, key)
    refused = await request(gw, "DELETE", "/v1/console/session", headers=with_cookie(cookie))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert (await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie))).status_code == 200

    response = await request(
        gw, "DELETE", "/v1/console/session", headers=with_cookie(cookie, **{"X-CSRF-Token": session["csrf_token"]})
    )
    assert response.status_code == 204
    cleared = set_cookie(response)[COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0" and cleared["httponly"] and cleared["samesite"] == "strict"
    for url in ("/v1/console/session", "/v1/audio/transcriptions"):
        gone = await request(gw, "GET", url, headers=with_cookie(cookie))
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_session", gone.text

    events = (await request(gw, "GET", "/v1/audit", headers=auth(gw.admin), params={"resource_id": session["key_id"]})).json()
    actions = [e["action"] for e in events["events"]]
    assert "console.login" in actions and "console.logout" in actions


async def test_revoking_the_key_ends_its_sessions(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-f", ["jobs:read"])
    cookie, session = await login(gw, key)
    revoked = await request(gw, "DELETE", f"/v1/keys/{session['key_id']}", headers=auth(gw.admin))
    assert revoked.status_code == 200
    response = await request(gw, "GET", "/v1/audio/transcriptions", headers=with_cookie(cookie))
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_session"
    stored = keys.console_session(hashlib.sha256(cookie.encode()).hexdigest())
    assert not await gw.services.redis.exists(stored)  # ended, not merely refused
    failures = (
        await request(
            gw, "GET", "/v1/audit", headers=auth(gw.admin), params={"action": "auth.failed", "resource_id": session["key_id"]}
        )
    ).json()["events"]
    assert failures and failures[0]["details"]["reason"] == "session_key_inactive"


async def test_expiry_is_enforced_by_the_server(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-g", ["jobs:read"])
    settings = gw.services.settings
    assert settings is gw.app.state.settings
    original = settings.console_session_ttl_s
    settings.console_session_ttl_s = 1
    try:
        response = await request(gw, "POST", "/v1/console/session", json={"api_key": key})
    finally:
        settings.console_session_ttl_s = original
    cookie = set_cookie(response)[COOKIE]
    assert cookie["max-age"] == "1"
    assert (await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie.value))).status_code == 200
    await asyncio.sleep(1.5)
    # The browser may keep the cookie as long as it likes: the server has forgotten it.
    expired = await request(gw, "GET", "/v1/audio/transcriptions", headers=with_cookie(cookie.value))
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "invalid_session"


async def test_cookie_websockets_must_come_from_the_same_origin(gw: Gateway) -> None:
    key = await add_key(gw.services, "console-h", ["realtime"])
    cookie, _ = await login(gw, key)
    path = "/v1/audio/transcriptions/stream"
    same = {"Cookie": f"{COOKIE}={cookie}", "Host": "gateway:8000", "Origin": "http://gateway:8000"}
    messages, code = await ws_attempt(gw.app, path, "", same)
    assert code == 1013 and messages[0]["code"] == "no_capacity", messages  # past authentication: no worker here

    for origin in ("http://evil.example", "null", "", "http://gateway:8001"):
        headers = {**same, "Origin": origin} if origin else {k: v for k, v in same.items() if k != "Origin"}
        messages, code = await ws_attempt(gw.app, path, "", headers)
        assert code == 1008 and messages[0]["code"] == "forbidden", (origin, messages)
    # ElevenLabs' edge refuses in its own shape.
    messages, code = await ws_attempt(
        gw.app, "/v1/speech-to-text/realtime", "model_id=scribe_v2_realtime", {**same, "Origin": "http://evil.example"}
    )
    assert code == 1008 and messages[0]["message_type"] == "auth_error"
    # A key in the query string is used instead of the cookie (and needs no origin check).
    messages, code = await ws_attempt(gw.app, path, f"api_key={key}", {**same, "Origin": "http://evil.example"})
    assert code == 1013, messages


# -- overview ---------------------------------------------------------------------------


async def add_rows(services: Services, tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> list[str]:
    ids = []
    async with services.sessionmaker() as db, db.begin():
        for fields in rows:
            job = Job(
                tenant_id=tenant_id,
                model="tiny.en",
                language="en",
                speaker_detection="none",
                parameters={},
                audio_key="jobs/x/audio/original.wav",
                audio_filename=fields.pop("filename", "a.wav"),
                audio_bytes=1,
                audio_duration=fields.pop("audio_duration", 60.0),
                audio_channels=1,
                audio_sample_rate=16_000,
                **fields,
            )
            db.add(job)
            await db.flush()
            ids.append(str(job.id))
    return ids


async def test_overview_counts_a_tenants_jobs(gw: Gateway) -> None:
    key = await add_key(gw.services, "overview-a", ["jobs:read"])
    other_key = await add_key(gw.services, "overview-b", ["jobs:read"])
    tenant, other = await tenant_id_of(gw, key), await tenant_id_of(gw, other_key)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    two_hours_ago = hour - timedelta(hours=2)
    await add_rows(
        gw.services,
        tenant,
        [
            {"status": "pending", "created_at": now},
            {"status": "running", "created_at": now},
            # completed in the current hour, 30 and 90 minutes of audio
            {"status": "completed", "created_at": hour, "completed_at": now, "audio_duration": 1800.0},
            {"status": "completed", "created_at": two_hours_ago, "completed_at": hour, "audio_duration": 5400.0},
            {
                "status": "failed",
                "created_at": two_hours_ago,
                "completed_at": two_hours_ago + timedelta(minutes=5),
                "error": "boom",
            },
            # created yesterday-ish, completed within the window: counted where it completed
            {
                "status": "completed",
                "created_at": now - timedelta(hours=30),
                "completed_at": two_hours_ago,
                "audio_duration": 3600.0,
            },
            # entirely before the window: only in the status counts
            {"status": "failed", "created_at": now - timedelta(days=3), "completed_at": now - timedelta(days=3), "error": "old"},
            {"status": "cancelled", "created_at": now, "completed_at": now},
        ],
    )
    await add_rows(gw.services, other, [{"status": "failed", "created_at": now, "completed_at": now, "error": "theirs"}])

    response = await request(gw, "GET", "/v1/console/overview", headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == str(tenant)
    assert body["jobs_by_status"] == {"pending": 1, "running": 1, "completed": 3, "failed": 2, "cancelled": 1}
    buckets = body["last_24h"]
    assert len(buckets) == 24 and datetime.fromisoformat(buckets[-1]["hour"]) == hour
    assert [datetime.fromisoformat(b["hour"]) for b in buckets] == [hour - timedelta(hours=23 - h) for h in range(24)]
    by_hour = {datetime.fromisoformat(b["hour"]): b for b in buckets}
    assert by_hour[hour] == {
        "hour": by_hour[hour]["hour"],
        "created": 4,
        "completed": 2,
        "failed": 0,
        "audio_hours_completed": 2.0,
    }
    earlier = by_hour[two_hours_ago]
    assert (earlier["created"], earlier["completed"], earlier["failed"], earlier["audio_hours_completed"]) == (2, 1, 1, 1.0)
    assert sum(b["created"] for b in buckets) == 6  # the 30-hour-old and 3-day-old jobs are outside
    assert body["throughput_audio_hours_per_hour"] == pytest.approx(3.0 / 24)
    assert body["error_rate"] == pytest.approx(1 / 4)
    assert [f["error"] for f in body["recent_failures"]] == ["boom", "old"]
    assert set(body["recent_failures"][0]) == {"id", "filename", "model", "error", "completed_at"}
    assert body["engines"] is None and body["realtime"] is None  # system-wide: admins only

    # A tenant key cannot look at another tenant; naming its own is fine.
    refused = await request(gw, "GET", "/v1/console/overview", headers=auth(key), params={"tenant_id": str(other)})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    own = await request(gw, "GET", "/v1/console/overview", headers=auth(key), params={"tenant_id": str(tenant)})
    assert own.json()["jobs_by_status"] == body["jobs_by_status"]
    bad = await request(gw, "GET", "/v1/console/overview", headers=auth(key), params={"tenant_id": "x"})
    assert bad.status_code == 400

    # An admin sees every tenant, or one.
    admin_view = (await request(gw, "GET", "/v1/console/overview", headers=auth(gw.admin))).json()
    assert admin_view["tenant_id"] is None and admin_view["jobs_by_status"]["failed"] >= 3
    assert "theirs" in [f["error"] for f in admin_view["recent_failures"]]
    one = (await request(gw, "GET", "/v1/console/overview", headers=auth(gw.admin), params={"tenant_id": str(other)})).json()
    assert one["tenant_id"] == str(other) and one["jobs_by_status"]["failed"] == 1 and one["error_rate"] == 1.0

    # No finished job in the window: no error rate.
    empty = await tenant_id_of(gw, await add_key(gw.services, "overview-c", ["jobs:read"]))
    nothing = (await request(gw, "GET", "/v1/console/overview", headers=auth(gw.admin), params={"tenant_id": str(empty)})).json()
    assert nothing["error_rate"] is None and nothing["throughput_audio_hours_per_hour"] == 0
    assert nothing["jobs_by_status"] == {"pending": 0, "running": 0, "completed": 0, "failed": 0, "cancelled": 0}


async def test_overview_shows_engine_queues_and_realtime_pool_to_admins(gw: Gateway) -> None:
    redis = gw.services.redis
    stream = keys.engine_stream("faster-whisper")
    await streams.ensure_group(redis, stream, keys.ENGINE_GROUP)
    for n in range(3):
        await streams.publish(redis, stream, {"task": n})
    taken = await streams.read_group(redis, stream, keys.ENGINE_GROUP, "engine-1", count=1, block_ms=10)
    assert len(taken) == 1
    await registry(gw.services).heartbeat(
        "worker-1", url="ws://127.0.0.1:9", capacity=4, active=0, models=["tiny.en"], status="ready", ttl_ms=60_000
    )

    body = (await request(gw, "GET", "/v1/console/overview", headers=auth(gw.admin))).json()
    queues = {q["engine_id"]: q for q in body["engines"]}
    assert set(queues) == {"faster-whisper"}  # only streams that exist
    fw = queues["faster-whisper"]
    assert fw["stream"] == stream and fw["stage"] == "transcribe" and fw["length"] == 3 and fw["pending"] == 1
    # A stream read is not a live instance: only engine heartbeats count (test_console_engines.py).
    assert fw["lag"] in (2, None) and fw["live_instances"] == 0
    pool = body["realtime"]
    assert pool["status"] == "available" and pool["capacity"] == 4 and pool["available_slots"] == 4
    assert pool["workers"][0]["id"] == "worker-1" and pool["workers"][0]["models"] == ["tiny.en"]

    # A session made from the admin key sees the same (scopes are the key's).
    cookie, _ = await login(gw, gw.admin)
    via_cookie = (await request(gw, "GET", "/v1/console/overview", headers=with_cookie(cookie))).json()
    assert via_cookie["engines"] == body["engines"]
    schema = (await request(gw, "GET", "/openapi.json")).json()
    assert "Overview" in schema["components"]["schemas"] and "/v1/console/overview" in schema["paths"]


# -- audio ------------------------------------------------------------------------------


async def add_audio_job(services: Services, tenant_id: uuid.UUID, data: bytes, extension: str = ".wav") -> str:
    job_id = uuid.UUID(await add_job(services, tenant_id))
    audio_key = keys.job_audio(job_id, extension)
    await asyncio.to_thread(services.store.put_bytes, audio_key, data)
    async with services.sessionmaker() as db, db.begin():
        await db.execute(update(Job).where(Job.id == job_id).values(audio_key=audio_key, audio_filename=f"talk{extension}"))
    return str(job_id)


AUDIO = bytes(range(256)) * 40


async def test_job_audio_supports_ranges_and_tenancy(gw: Gateway) -> None:
    key = await add_key(gw.services, "audio-a", ["jobs:read"])
    other = await add_key(gw.services, "audio-b", ["jobs:read"])
    job = await add_audio_job(gw.services, await tenant_id_of(gw, key), AUDIO)
    url = f"/v1/audio/transcriptions/{job}/audio"

    full = await request(gw, "GET", url, headers=auth(key))
    assert full.status_code == 200 and full.content == AUDIO
    assert full.headers["content-type"] == "audio/wav" and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-disposition"].startswith("inline") and "talk.wav" in full.headers["content-disposition"]

    part = await request(gw, "GET", url, headers={**auth(key), "Range": "bytes=1000-1099"})
    assert part.status_code == 206 and part.content == AUDIO[1000:1100]
    assert part.headers["content-range"] == f"bytes 1000-1099/{len(AUDIO)}"
    tail = await request(gw, "GET", url, headers={**auth(key), "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == AUDIO[-10:]

    # Through a console session too; another tenant gets the 404 an unknown id gets.
    cookie, _ = await login(gw, key)
    assert (await request(gw, "GET", url, headers=with_cookie(cookie))).content == AUDIO
    hidden = await request(gw, "GET", url, headers=auth(other))
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "job_not_found"

    mp3 = await add_audio_job(gw.services, await tenant_id_of(gw, key), b"ID3" + b"\0" * 100, ".mp3")
    response = await request(gw, "GET", f"/v1/audio/transcriptions/{mp3}/audio", headers=auth(key))
    assert response.headers["content-type"] == "audio/mpeg"

    await asyncio.to_thread(gw.services.store.delete_prefix, keys.job_prefix(job))
    gone = await request(gw, "GET", url, headers=auth(key))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "audio_not_found"


async def test_job_audio_from_s3_goes_through_a_removed_temp_file(
    own_database: str, redis_url: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=own_database,
        redis_url=redis_url,
        data_dir=tmp_path,
        storage_backend="s3",
        s3_endpoint_url=s3_env["DALSTON_S3_ENDPOINT_URL"],
        s3_bucket=s3_env["DALSTON_S3_BUCKET"],
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        services: Services = app.state.services
        key = await add_key(services, "audio-s3", ["jobs:read"])
        job = await add_audio_job(services, (await key_row(services, key)).tenant_id, AUDIO, ".flac")
        before = set(Path(tempfile.gettempdir()).glob("dalston-audio-*"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            url = f"/v1/audio/transcriptions/{job}/audio"
            part = await client.get(url, headers={**auth(key), "Range": "bytes=0-9"})
            assert part.status_code == 206 and part.content == AUDIO[:10] and part.headers["content-type"] == "audio/flac"
            await asyncio.to_thread(services.store.delete_prefix, keys.job_prefix(job))
            gone = await client.get(url, headers=auth(key))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "audio_not_found"
        assert set(Path(tempfile.gettempdir()).glob("dalston-audio-*")) == before
    finally:
        await lifespan.__aexit__(None, None, None)
