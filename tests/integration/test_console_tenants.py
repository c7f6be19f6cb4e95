"""An admin's console session switches tenant; nothing else can act for another tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from test_auth_matrix import add_job, auth
from test_console import Gateway, add_key, gw, key_row, login, own_database, request, tenant_id_of, with_cookie

from shared.db import ApiKey

__all__ = ["gw", "own_database"]  # the module-scoped fixtures, shared with test_console


async def test_an_admin_session_acts_for_the_tenant_it_switched_to(gw: Gateway) -> None:
    other = await add_key(gw.services, "tenant-switch-other", ["jobs:read"])
    other_tenant = await tenant_id_of(gw, other)
    theirs = await add_job(gw.services, other_tenant)
    cookie, session = await login(gw, gw.admin)
    own_tenant = session["tenant_id"]
    assert session["key_tenant_id"] == own_tenant
    csrf = {"X-CSRF-Token": session["csrf_token"]}

    listed = await request(gw, "GET", "/v1/tenants", headers=with_cookie(cookie))
    assert listed.status_code == 200
    names = {t["name"]: t for t in listed.json()["tenants"]}
    assert names["tenant-switch-other"]["active_keys"] == 1

    hidden = await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))
    assert hidden.status_code == 404

    switched = await request(
        gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": str(other_tenant)}, headers=with_cookie(cookie, **csrf)
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["tenant_id"] == str(other_tenant) and switched.json()["tenant_name"] == "tenant-switch-other"
    assert switched.json()["key_tenant_id"] == own_tenant
    seen = await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))
    assert seen.status_code == 200
    again = await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie))
    assert again.json()["tenant_id"] == str(other_tenant)

    # The admin key itself, in a header, still acts for its own tenant only.
    by_key = await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=auth(gw.admin))
    assert by_key.status_code == 404

    back = await request(gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": None}, headers=with_cookie(cookie, **csrf))
    assert back.json()["tenant_id"] == own_tenant
    gone = await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))
    assert gone.status_code == 404

    audit = await request(gw, "GET", "/v1/audit?action=console.tenant_switched", headers=auth(gw.admin))
    assert {e["tenant_id"] for e in audit.json()["events"]} >= {str(other_tenant), own_tenant}


async def test_tenant_switch_refusals(gw: Gateway) -> None:
    admin_cookie, admin_session = await login(gw, gw.admin)
    csrf = {"X-CSRF-Token": admin_session["csrf_token"]}
    unknown = await request(
        gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": str(uuid.uuid4())}, headers=with_cookie(admin_cookie, **csrf)
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "tenant_not_found"
    no_csrf = await request(gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": None}, headers=with_cookie(admin_cookie))
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    bad = await request(
        gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": "not-a-uuid"}, headers=with_cookie(admin_cookie, **csrf)
    )
    assert bad.status_code in (400, 422) and "error" in bad.json()

    reader = await add_key(gw.services, "tenant-switch-reader", ["jobs:read", "jobs:write"])
    cookie, session = await login(gw, reader)
    refused = await request(
        gw,
        "PUT",
        "/v1/console/session/tenant",
        json={"tenant_id": admin_session["tenant_id"]},
        headers=with_cookie(cookie, **{"X-CSRF-Token": session["csrf_token"]}),
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    tenants = await request(gw, "GET", "/v1/tenants", headers=auth(reader))
    assert tenants.status_code == 403


async def test_a_switched_session_falls_back_when_its_key_loses_admin(gw: Gateway) -> None:
    admin = await add_key(gw.services, "tenant-switch-admin", ["admin"])
    other_tenant = await tenant_id_of(gw, await add_key(gw.services, "tenant-switch-target", ["jobs:read"]))
    theirs = await add_job(gw.services, other_tenant)
    cookie, session = await login(gw, admin)
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    await request(
        gw, "PUT", "/v1/console/session/tenant", json={"tenant_id": str(other_tenant)}, headers=with_cookie(cookie, **csrf)
    )
    assert (await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))).status_code == 200

    row = await key_row(gw.services, admin)
    async with gw.services.sessionmaker() as db, db.begin():
        await db.execute(update(ApiKey).where(ApiKey.id == row.id).values(scopes=["jobs:read"]))
    now = await request(gw, "GET", "/v1/console/session", headers=with_cookie(cookie))
    assert now.json()["tenant_id"] == session["key_tenant_id"]
    assert (await request(gw, "GET", f"/v1/audio/transcriptions/{theirs}", headers=with_cookie(cookie))).status_code == 404
