"""Keys (create/list/revoke, expiry, last use), `/v1/me` and the append-only audit log.

A database of its own: the last-admin-key rule and the audit counts need to see every key
and event there is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from sqlalchemy import update
from support import create_database, drop_database
from test_auth_matrix import add_job, add_webhook, auth

from gateway.app import create_app
from gateway.services import Services
from shared.bootstrap import generate_key, hash_key, key_prefix, migrate
from shared.db import ApiKey, Tenant
from shared.settings import Settings


@pytest.fixture(scope="module")
def own_database() -> AsyncIterator[str]:
    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
async def gw(own_database: str, redis_url: str, tmp_path_factory) -> AsyncIterator[tuple[httpx.AsyncClient, Services, str]]:
    settings = Settings(
        database_url=own_database, redis_url=redis_url, data_dir=tmp_path_factory.mktemp("keys"), storage_backend="fs"
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    admin = generate_key()
    async with services.sessionmaker() as db, db.begin():
        tenant = Tenant(name="default")
        db.add(tenant)
        await db.flush()
        db.add(ApiKey(tenant_id=tenant.id, name="root", prefix=key_prefix(admin), key_hash=hash_key(admin), scopes=["admin"]))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60)
    try:
        yield client, services, admin
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def events(client: httpx.AsyncClient, admin: str, **filters) -> list[dict]:
    response = await client.get("/v1/audit", headers=auth(admin), params={"limit": 200, **filters})
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_create_list_me_and_revoke(gw) -> None:
    client, services, admin = gw
    response = await client.post(
        "/v1/keys",
        headers=auth(admin),
        json={
            "name": "team a ci",
            "tenant": "team-a",
            "create_tenant": True,
            "scopes": ["jobs:read", "jobs:write"],
            "expires_in_seconds": 3600,
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["key"]
    assert secret.startswith("dk_") and created["prefix"] == secret[:10] and created["tenant"]["name"] == "team-a"
    assert created["status"] == "active" and created["scopes"] == ["jobs:read", "jobs:write"]
    assert created["last_used_at"] is None

    # Listed without the secret (or its hash), and shown once: the key endpoint never repeats it.
    listing = await client.get("/v1/keys", headers=auth(admin), params={"tenant": "team-a"})
    assert [k["id"] for k in listing.json()["keys"]] == [created["id"]]
    one = await client.get(f"/v1/keys/{created['id']}", headers=auth(admin))
    for text in (listing.text, one.text):
        assert secret not in text and hash_key(secret) not in text and "key" not in one.json()

    me = await client.get("/v1/me", headers={"xi-api-key": secret})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["tenant"]["name"] == "team-a" and body["key"]["id"] == created["id"] and body["key"]["prefix"] == secret[:10]
    assert body["scopes"] == ["jobs:read", "jobs:write"] and body["via"] == "key"
    assert datetime.fromisoformat(body["key"]["expires_at"]) > datetime.now(UTC) + timedelta(minutes=59)

    # last_used_at is set by use, at most once a minute.
    first_use = (await client.get(f"/v1/keys/{created['id']}", headers=auth(admin))).json()["last_used_at"]
    assert first_use is not None
    await client.get("/v1/me", headers=auth(secret))
    assert (await client.get(f"/v1/keys/{created['id']}", headers=auth(admin))).json()["last_used_at"] == first_use

    revoked = await client.delete(f"/v1/keys/{created['id']}", headers=auth(admin))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = await client.get("/v1/me", headers=auth(secret))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key" and secret not in refused.text
    again = await client.delete(f"/v1/keys/{created['id']}", headers=auth(admin))  # idempotent
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert created["id"] not in (await client.get("/v1/keys", headers=auth(admin))).text
    assert created["id"] in (await client.get("/v1/keys", headers=auth(admin), params={"include_revoked": True})).text

    actions = [(e["action"], e["resource_id"]) for e in await events(client, admin, tenant_id=created["tenant"]["id"])]
    assert ("key.created", created["id"]) in actions and ("tenant.created", created["tenant"]["id"]) in actions
    assert actions.count(("key.revoked", created["id"])) == 1
    assert ("auth.failed", created["id"]) in actions  # the use after revocation, named by key id


async def test_key_creation_is_validated(gw) -> None:
    client, _, admin = gw
    cases = [
        ({"name": "x", "scopes": ["root"]}, 400, "invalid_parameter"),
        ({"name": "x", "scopes": []}, 400, "invalid_parameter"),
        ({"name": "", "scopes": ["jobs:read"]}, 400, "invalid_parameter"),
        ({"name": "nul\u0000byte", "scopes": ["jobs:read"]}, 400, "invalid_parameter"),
        ({"name": "x", "scopes": ["jobs:read"], "tenant": "nobody-here"}, 404, "tenant_not_found"),
        ({"name": "x", "scopes": ["jobs:read"], "tenant": "../etc"}, 400, "invalid_parameter"),
        ({"name": "x", "scopes": ["jobs:read"], "expires_at": "2001-01-01T00:00:00Z"}, 400, "invalid_parameter"),
        ({"name": "x", "scopes": ["jobs:read"], "expires_at": "2099-01-01T00:00:00"}, 400, "invalid_parameter"),  # no zone
        (
            {"name": "x", "scopes": ["jobs:read"], "expires_at": "2099-01-01T00:00:00Z", "expires_in_seconds": 600},
            400,
            "invalid_parameter",
        ),
    ]
    for body, status, code in cases:
        response = await client.post("/v1/keys", headers=auth(admin), json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.text)
    assert (await client.get("/v1/keys", headers=auth(admin), params={"tenant": "a\x00"})).status_code == 400
    assert (await client.get("/v1/keys/not-a-uuid", headers=auth(admin))).status_code == 404
    assert (await client.delete(f"/v1/keys/{uuid.uuid4()}", headers=auth(admin))).status_code == 404


async def test_expired_key_is_refused_and_audited(gw) -> None:
    client, services, admin = gw
    created = (
        await client.post(
            "/v1/keys", headers=auth(admin), json={"name": "soon", "scopes": ["jobs:read"], "expires_in_seconds": 60}
        )
    ).json()
    assert (await client.get("/v1/me", headers=auth(created["key"]))).status_code == 200
    async with services.sessionmaker() as db, db.begin():  # let the minute pass
        await db.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await client.get("/v1/audio/transcriptions", headers=auth(created["key"]))
    assert response.status_code == 401 and created["key"] not in response.text
    assert (await client.get(f"/v1/keys/{created['id']}", headers=auth(admin))).json()["status"] == "expired"
    failures = await events(client, admin, action="auth.failed", resource_id=created["id"])
    assert failures and failures[0]["details"] == {"reason": "expired_key", "path": "/v1/audio/transcriptions"}
    assert failures[0]["outcome"] == "failure" and failures[0]["request_id"]


async def test_last_admin_key_cannot_be_revoked(gw) -> None:
    client, _, admin = gw
    me = (await client.get("/v1/me", headers=auth(admin))).json()
    response = await client.delete(f"/v1/keys/{me['key']['id']}", headers=auth(admin))
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_admin_key"
    second = (await client.post("/v1/keys", headers=auth(admin), json={"name": "admin 2", "scopes": ["admin"]})).json()
    assert (await client.delete(f"/v1/keys/{second['id']}", headers=auth(admin))).status_code == 200


async def test_actions_are_audited_without_secrets(gw) -> None:
    client, services, admin = gw
    me = (await client.get("/v1/me", headers=auth(admin))).json()
    tenant_id = uuid.UUID(me["tenant"]["id"])
    job = await add_job(services, tenant_id)
    webhook = await add_webhook(services, tenant_id)
    bogus = generate_key()
    assert (await client.get("/v1/me", headers=auth(bogus))).status_code == 401
    assert (await client.get(f"/v1/audio/transcriptions/{job}/export/srt", headers=auth(admin))).status_code == 200
    rotated = await client.post(f"/v1/webhooks/{webhook}/rotate-secret", headers=auth(admin))
    assert rotated.status_code == 200
    token = (await client.post("/v1/tokens", headers=auth(admin), json={"type": "batch_scribe"})).json()["token"]
    assert (await client.delete(f"/v1/audio/transcriptions/{job}", headers=auth(admin))).status_code == 204
    assert (await client.delete(f"/v1/webhooks/{webhook}", headers=auth(admin))).status_code == 204

    logged = await events(client, admin)
    by_action = {(e["action"], e["resource_id"]) for e in logged}
    for expected in [
        ("transcript.exported", job),
        ("job.deleted", job),
        ("webhook.secret_rotated", webhook),
        ("webhook.deleted", webhook),
    ]:
        assert expected in by_action, expected
    exported = next(e for e in logged if e["action"] == "transcript.exported")
    assert exported["actor_key_id"] == me["key"]["id"] and exported["tenant_id"] == str(tenant_id)
    assert exported["details"] == {"format": "srt"} and exported["client_ip"] == "127.0.0.1"
    assert any(e["action"] == "token.issued" and e["details"]["type"] == "batch_scribe" for e in logged)
    unknown = [e for e in logged if e["action"] == "auth.failed" and e["details"].get("reason") == "unknown_key"]
    assert unknown and unknown[0]["resource_id"] is None
    dump = (await client.get("/v1/audit", headers=auth(admin), params={"limit": 200})).text
    for secret in (bogus, token, admin, rotated.json()["secret"], bogus[:10]):
        assert secret not in dump


async def test_audit_cursor_and_filters(gw) -> None:
    client, _, admin = gw
    for _ in range(5):
        assert (await client.get("/v1/me", headers=auth(generate_key()))).status_code == 401
    everything = await events(client, admin)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/audit", headers=auth(admin), params=params)).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything] and seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    failed = await events(client, admin, action="auth.failed", outcome="failure")
    assert len(failed) >= 5 and all(e["action"] == "auth.failed" for e in failed)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await events(client, admin, since=future) == []
    for bad in (
        {"cursor": "abc"},
        {"cursor": "9" * 30},
        {"limit": 0},
        {"since": "yesterday"},
        {"tenant_id": "x"},
        {"action": "a\x00b"},
        {"resource_id": "\x00"},
    ):
        response = await client.get("/v1/audit", headers=auth(admin), params=bad)
        assert response.status_code == 400, (bad, response.text)


async def test_audit_table_refuses_update_delete_truncate(gw, own_database: str) -> None:
    client, _, admin = gw
    await client.get("/v1/me", headers=auth(generate_key()))  # at least one row
    conn = await asyncpg.connect(own_database)
    try:
        before = await conn.fetchval("SELECT count(*) FROM audit_events")
        assert before > 0
        for statement in (
            "UPDATE audit_events SET action = 'nothing.happened'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "DELETE FROM audit_events WHERE id = -1",  # refused even when it would touch nothing
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == before
        await conn.execute("INSERT INTO audit_events (action, outcome, details) VALUES ('test.appended', 'success', '{}')")
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == before + 1
    finally:
        await conn.close()


async def test_secrets_never_reach_the_logs(gw, capfd) -> None:
    client, _, admin = gw
    created = (await client.post("/v1/keys", headers=auth(admin), json={"name": "logged?", "scopes": ["jobs:read"]})).json()
    bogus = generate_key()
    await client.get("/v1/me", headers=auth(bogus))
    await client.get("/v1/me", headers=auth(created["key"]))
    await client.delete(f"/v1/keys/{created['id']}", headers=auth(admin))
    await client.get("/v1/me", headers=auth(created["key"]))
    await asyncio.sleep(0)
    out, err = capfd.readouterr()
    for secret in (admin, bogus, created["key"]):
        assert secret not in out and secret not in err
