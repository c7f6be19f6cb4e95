"""The access matrix: every route of `create_app()` against every kind of caller.

Routes are enumerated from the app itself (`gateway.auth.declared_routes` flattens
`app.routes`), so a route added without a declared scope fails here, and a route with a
path parameter this file does not know how to fill fails with a message saying so.

For each route: no key -> 401; a key without the declared scope -> 403; the right key on
another tenant's resource -> 404; the right key on the caller's own resource -> neither
401, 403 nor 404 (2xx, or the route's normal 4xx for an empty body); `admin` passes every
scope check. WebSocket routes are driven through ASGI directly: refused with an
`unauthorized`/`forbidden` error and close 1008, or (right key) refused for another reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.auth import SCOPES, DeclaredRoute, declared_routes
from gateway.services import Services
from shared.bootstrap import generate_key, hash_key, key_prefix
from shared.db import ApiKey, Job, RealtimeSession, Speaker, Tenant, WebhookEndpoint
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word

TRANSCRIPT = Transcript(
    text="hello world",
    language="en",
    language_probability=0.9,
    duration=1.0,
    segments=[
        Segment(
            id=0,
            start=0.0,
            end=1.0,
            text="hello world",
            words=[Word(text="hello", start=0.0, end=0.5), Word(text="world", start=0.5, end=1.0)],
        )
    ],
    words=[Word(text="hello", start=0.0, end=0.5), Word(text="world", start=0.5, end=1.0)],
    model="tiny.en",
)
# Path parameters that name a tenant's own resource: another tenant's id must answer 404.
TENANT_RESOURCES = {
    "job_id": "job",
    "transcription_id": "job",
    "webhook_id": "webhook",
    "session_id": "realtime session",
    "speaker_id": "enrolled speaker",
}
PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


@dataclass
class TenantKeys:
    id: uuid.UUID
    name: str
    keys: dict[str, str] = field(default_factory=dict)  # scope -> key holding only that scope
    key_ids: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    services: Services
    a: TenantKeys
    b: TenantKeys
    b_job: str
    b_webhook: str
    b_session: str
    b_speaker: str
    model_id: str


async def add_tenant(services: Services, name: str) -> TenantKeys:
    async with services.sessionmaker() as db, db.begin():
        tenant = Tenant(name=name)
        db.add(tenant)
        await db.flush()
        keys = TenantKeys(id=tenant.id, name=name)
        for scope in SCOPES:
            secret = generate_key()
            row = ApiKey(
                tenant_id=tenant.id, name=f"only {scope}", prefix=key_prefix(secret), key_hash=hash_key(secret), scopes=[scope]
            )
            db.add(row)
            await db.flush()
            keys.keys[scope], keys.key_ids[scope] = secret, row.id
    return keys


async def add_job(services: Services, tenant_id: uuid.UUID) -> str:
    """A completed job with its transcript in storage, as the orchestrator leaves one."""
    job_id = uuid.uuid4()
    key = f"jobs/{job_id}/transcript.json"
    await asyncio.to_thread(services.store.put_bytes, key, TRANSCRIPT.model_dump_json().encode())
    async with services.sessionmaker() as db, db.begin():
        db.add(
            Job(
                id=job_id,
                tenant_id=tenant_id,
                status="completed",
                model="tiny.en",
                language="en",
                speaker_detection="none",
                parameters={},
                audio_key=f"jobs/{job_id}/audio.wav",
                audio_bytes=32_000,
                audio_duration=1.0,
                audio_channels=1,
                audio_sample_rate=16_000,
                transcript_key=key,
                completed_at=datetime.now(UTC),
            )
        )
    return str(job_id)


async def add_webhook(services: Services, tenant_id: uuid.UUID) -> str:
    async with services.sessionmaker() as db, db.begin():
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id,
            url="https://hooks.example.com/dalston",
            events=["job.completed"],
            active=True,
            secret="whsec_" + "x" * 32,
        )
        db.add(endpoint)
        await db.flush()
        return str(endpoint.id)


async def add_session(services: Services, tenant_id: uuid.UUID) -> str:
    """A finished realtime session (no recording: its audio routes answer their own 404)."""
    async with services.sessionmaker() as db, db.begin():
        row = RealtimeSession(
            tenant_id=tenant_id,
            status="completed",
            protocol="native",
            model="tiny.en",
            parameters={},
            retain_audio=True,
            ended_at=datetime.now(UTC),
            audio_duration=1.0,
        )
        db.add(row)
        await db.flush()
        return str(row.id)


async def add_speaker(services: Services, tenant_id: uuid.UUID) -> str:
    """An enrolled voice (no kept sample: its audio route answers its own 404)."""
    async with services.sessionmaker() as db, db.begin():
        row = Speaker(
            tenant_id=tenant_id,
            name=f"voice-{uuid.uuid4().hex[:8]}",
            embedding=[1.0] + [0.0] * 255,
            encoder="resemblyzer",
            sample_seconds=5.0,
            speech_seconds=4.0,
        )
        db.add(row)
        await db.flush()
        return str(row.id)


async def add_key(services: Services, tenant_id: uuid.UUID) -> str:
    secret = generate_key()
    async with services.sessionmaker() as db, db.begin():
        row = ApiKey(
            tenant_id=tenant_id, name="to revoke", prefix=key_prefix(secret), key_hash=hash_key(secret), scopes=["jobs:read"]
        )
        db.add(row)
        await db.flush()
        return str(row.id)


@pytest.fixture(scope="module")
async def world(database_url: str, redis_url: str, tmp_path_factory) -> AsyncIterator[World]:
    settings = Settings(
        database_url=database_url, redis_url=redis_url, data_dir=tmp_path_factory.mktemp("matrix"), storage_backend="fs"
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60)
    try:
        suffix = uuid.uuid4().hex[:8]
        a = await add_tenant(services, f"matrix-a-{suffix}")
        b = await add_tenant(services, f"matrix-b-{suffix}")
        models = (await client.get("/v1/models", headers=auth(a.keys["jobs:read"]))).json()["data"]
        yield World(
            client=client,
            app=app,
            services=services,
            a=a,
            b=b,
            b_job=await add_job(services, b.id),
            b_webhook=await add_webhook(services, b.id),
            b_session=await add_session(services, b.id),
            b_speaker=await add_speaker(services, b.id),
            model_id=models[0]["id"] if models else "tiny.en",
        )
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def route_id(route: DeclaredRoute) -> str:
    return f"{'WS' if route.websocket else '/'.join(sorted(route.methods - {'HEAD'}))} {route.path}"


ROUTES = declared_routes(create_app(Settings(database_url="postgresql://unused/unused")))
# Routes that take only the console session cookie (no key) are covered by tests/integration/test_console.py.
HTTP_ROUTES = [
    (m, r) for r in ROUTES if not r.websocket and not (r.access and r.access.session) for m in sorted(r.methods - {"HEAD"})
]
WS_ROUTES = [r for r in ROUTES if r.websocket]


def test_every_route_declares_its_access() -> None:
    undeclared = [route_id(r) for r in ROUTES if r.access is None]
    assert not undeclared, f"routes without a declared scope: {undeclared}"
    assert {"/v1/keys", "/v1/me", "/v1/audit", "/v1/audio/transcriptions/{job_id}"} <= {r.path for r in ROUTES}
    public = sorted(r.path for r in ROUTES if r.access.public)
    assert public == sorted(
        [
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
            "/health",
            "/ready",
            "/metrics",
            "/v1/console/session",  # POST: logging in with a key
            "/console",  # the SPA's files; its data comes from the authenticated API
            "/console/{path:path}",
        ]
    )
    logins = [r for r in ROUTES if r.path == "/v1/console/session"]
    assert {(frozenset(r.methods - {"HEAD"}), r.access.public, r.access.session) for r in logins} == {
        (frozenset({"POST"}), True, False),
        (frozenset({"GET"}), False, True),
        (frozenset({"DELETE"}), False, True),
    }


def test_an_undeclared_route_is_refused_at_startup() -> None:
    from fastapi import APIRouter

    import gateway.app as gateway_app

    rogue = APIRouter()

    @rogue.get("/v1/rogue")
    async def rogue_route() -> dict:
        return {}

    original = gateway_app.keys.router
    combined = APIRouter()
    combined.include_router(original)
    combined.include_router(rogue)
    gateway_app.keys.router = combined
    try:
        with pytest.raises(RuntimeError, match="/v1/rogue"):
            create_app(Settings(database_url="postgresql://unused/unused"))
    finally:
        gateway_app.keys.router = original


def expected_scopes(method: str, path: str) -> frozenset[str]:
    """What each family of routes should demand, written down independently of the code
    so that a route declaring the wrong scope (or "any key") fails here."""
    if path.startswith(("/v1/keys", "/v1/audit", "/v1/tenants")):
        return frozenset({"admin"})
    if path.startswith("/v1/webhooks"):
        return frozenset({"webhooks"})
    if path.startswith("/v1/realtime") or method == "WS":
        return frozenset({"realtime"})
    if path == "/v1/me":
        return frozenset()  # any valid key may ask who it is
    if path in ("/v1/console/session", "/v1/console/session/tenant"):
        return frozenset()  # the session cookie itself, whatever its key's scopes
    if path in ("/v1/console/engines", "/v1/console/models", "/v1/console/settings"):
        return frozenset({"admin"})  # the whole system's engines, models and configuration
    if path == "/v1/console/overview":
        return frozenset({"jobs:read"})
    if path.startswith(("/v1/single-use-token", "/v1/tokens")):
        return frozenset({"jobs:read", "jobs:write", "realtime"})  # a key that could use some token
    return frozenset({"jobs:read"}) if method == "GET" else frozenset({"jobs:write"})


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access and not r.access.public], ids=route_id)
def test_each_route_demands_the_expected_scope(route: DeclaredRoute) -> None:
    for method in ["WS"] if route.websocket else sorted(route.methods - {"HEAD"}):
        assert route.access.scopes == expected_scopes(method, route.path), f"{method} {route.path}"


def fill(path: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{path}: the matrix does not know how to fill path parameter {name!r}; add it")
        return values[name]

    return PARAM.sub(one, path)


BODIES: dict[str, dict[str, Any]] = {"/v1/audio/transcriptions/{job_id}/speakers": {"names": {"speaker_0": "Ada"}}}


async def own_values(w: World) -> dict[str, str]:
    """Fresh resources of tenant A, so a route that destroys one (DELETE) leaves the rest."""
    job = await add_job(w.services, w.a.id)
    return {
        "job_id": job,
        "transcription_id": job,
        "webhook_id": await add_webhook(w.services, w.a.id),
        "session_id": await add_session(w.services, w.a.id),
        "speaker_id": await add_speaker(w.services, w.a.id),
        "key_id": await add_key(w.services, w.a.id),
        "format": "txt",
        "path": "jobs",  # the console SPA's client-side routes
        "model_id": w.model_id,
        "token_type": "batch_scribe",
        "delivery_id": str(uuid.uuid4()),  # no such delivery: the webhook is what tenancy rests on
    }


def right_scope(route: DeclaredRoute) -> str:
    """A non-admin scope the route accepts (any one will do when it accepts any key)."""
    return sorted(route.access.scopes)[0] if route.access.scopes else "jobs:read"


def wrong_scope(route: DeclaredRoute) -> str | None:
    candidates = [s for s in SCOPES if s != "admin" and s not in route.access.scopes]
    return candidates[0] if route.access.scopes and candidates else None


def is_auth_error(response: httpx.Response) -> bool:
    return response.status_code in (401, 403)


@pytest.mark.parametrize(("method", "route"), HTTP_ROUTES, ids=[f"{m} {r.path}" for m, r in HTTP_ROUTES])
async def test_http_route_matrix(world: World, method: str, route: DeclaredRoute) -> None:
    w = world
    values = await own_values(w)
    url = fill(route.path, values)

    def request(key: str | None = None, target: str = url, **kwargs: Any):
        return w.client.request(method, target, headers=auth(key) if key else {}, **kwargs)

    # A minimal valid JSON body where one is expected, so validation does not answer first.
    body = {"json": BODIES.get(route.path, {})} if method in ("POST", "PATCH", "PUT") else {}

    if route.access.public:
        response = await request(**body)
        # 503: the console is not built here; 400: logging in with an empty body (no key).
        allowed = {503, 400} if route.path == "/v1/console/session" else {503}
        assert response.status_code < 400 or response.status_code in allowed, response.text
        return

    # No key, and a key nobody issued: 401, without repeating the key.
    response = await request()
    assert response.status_code == 401, response.text
    bogus = generate_key()
    response = await request(bogus)
    assert response.status_code == 401, response.text
    assert bogus not in response.text

    # A key of the right tenant without the scope: 403.
    wrong = wrong_scope(route)
    if wrong is not None:
        response = await request(w.a.keys[wrong])
        assert response.status_code == 403, f"{wrong}: {response.status_code} {response.text}"

    # The right key on another tenant's resource: 404, exactly like an unknown id.
    right = w.a.keys[right_scope(route)]
    owned = [p for p in PARAM.findall(route.path) if p in TENANT_RESOURCES]
    if owned:
        other = dict(
            values,
            job_id=w.b_job,
            transcription_id=w.b_job,
            webhook_id=w.b_webhook,
            session_id=w.b_session,
            speaker_id=w.b_speaker,
        )
        response = await request(right, fill(route.path, other), **body)
        assert response.status_code == 404, f"another tenant's {owned}: {response.status_code} {response.text}"
        unknown = {**values, **{p: str(uuid.uuid4()) for p in TENANT_RESOURCES}}
        unknown_response = await request(right, fill(route.path, unknown), **body)
        assert unknown_response.status_code == 404
        # Same answer shape: nothing tells "exists elsewhere" from "does not exist".
        assert _error_code(response) == _error_code(unknown_response)
    if "key_id" in PARAM.findall(route.path):
        response = await request(right, fill(route.path, dict(values, key_id=str(uuid.uuid4()))))
        assert response.status_code == 404, response.text

    # The right key on its own resources: served (or the route's normal 4xx for an empty
    # body). A 404 is allowed only for something other than the resource itself (e.g. a
    # session that kept no recording), never with the code an unknown id gets.
    not_found_code = _error_code(unknown_response) if owned else None
    response = await request(right)
    assert not is_auth_error(response) and response.status_code < 500, response.text
    if response.status_code == 404:
        assert owned and _error_code(response) != not_found_code, response.text
    if route.path not in ("/v1/keys", "/v1/audit"):  # the operator's views span tenants by design
        assert w.b_job not in response.text and w.b_webhook not in response.text and w.b_session not in response.text
        assert w.b_speaker not in response.text

    # `admin` implies every scope.
    response = await request(w.a.keys["admin"], fill(route.path, await own_values(w)))
    assert not is_auth_error(response) and response.status_code < 500, response.text


def _error_code(response: httpx.Response) -> Any:
    body = response.json()
    return body.get("error", {}).get("code") if "error" in body else body.get("detail", {}).get("status")


# -- WebSockets -----------------------------------------------------------------------


async def ws_attempt(
    app: Any, path: str, query: str = "", headers: dict[str, str] | None = None
) -> tuple[list[dict], int | None]:
    """Open a WebSocket through ASGI: the JSON messages sent and the close code."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "server": ("gateway", 80),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    messages: list[dict] = []
    close: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "websocket.send" and message.get("text"):
            messages.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            close.append(message.get("code", 1000))
            await inbox.put({"type": "websocket.disconnect", "code": message.get("code", 1000)})

    await asyncio.wait_for(app(scope, inbox.get, send), timeout=60)
    return messages, close[0] if close else None


def ws_error(messages: list[dict]) -> str:
    assert messages, "no message before the close"
    msg = messages[0]
    if isinstance(msg.get("error"), dict):  # OpenAI's shape: {"type": "error", "error": {"code": ...}}
        return msg["error"].get("code")
    return msg.get("code") or msg.get("message_type")


WS_QUERY = "model_id=scribe_v2_realtime"  # the ElevenLabs edge requires it; the native one ignores it


@pytest.mark.parametrize("route", WS_ROUTES, ids=[r.path for r in WS_ROUTES])
async def test_websocket_route_matrix(world: World, route: DeclaredRoute) -> None:
    w = world
    # Each edge words the refusals in its own protocol.
    if "speech-to-text" in route.path:
        unauthorized, forbidden = "auth_error", "auth_error"
    elif route.path == "/v1/realtime":
        unauthorized, forbidden = "invalid_api_key", "forbidden"
    else:
        unauthorized, forbidden = "unauthorized", "forbidden"

    messages, code = await ws_attempt(w.app, route.path, WS_QUERY)
    assert code == 1008 and ws_error(messages) == unauthorized, messages
    bogus = generate_key()
    messages, code = await ws_attempt(w.app, route.path, WS_QUERY, {"Authorization": f"Bearer {bogus}"})
    assert code == 1008 and ws_error(messages) == unauthorized
    assert bogus not in json.dumps(messages)

    messages, code = await ws_attempt(w.app, route.path, WS_QUERY, {"xi-api-key": w.a.keys[wrong_scope(route)]})
    assert code == 1008 and ws_error(messages) == forbidden, messages

    # The right key, as a header or (browsers) a query parameter: past authentication; no
    # worker is registered here, so the session is refused for capacity instead.
    for query, headers in ((WS_QUERY, {"xi-api-key": w.a.keys["realtime"]}), (f"{WS_QUERY}&api_key={w.a.keys['realtime']}", {})):
        messages, code = await ws_attempt(w.app, route.path, query, headers)
        assert ws_error(messages) not in ("unauthorized", "forbidden", "auth_error", "invalid_api_key"), messages
        assert code == 1013, messages


async def test_realtime_token_is_single_use_and_narrow(world: World) -> None:
    w = world
    path = "/v1/speech-to-text/realtime"
    token = (await w.client.post("/v1/single-use-token/realtime_scribe", headers=auth(w.a.keys["admin"]))).json()["token"]
    messages, code = await ws_attempt(w.app, path, f"{WS_QUERY}&token={token}")
    assert ws_error(messages) != "auth_error" and code == 1013, messages
    messages, code = await ws_attempt(w.app, path, f"{WS_QUERY}&token={token}")  # consumed
    assert ws_error(messages) == "auth_error" and code == 1008
    assert token not in json.dumps(messages)

    # A batch token does not open a realtime session, and a key without `realtime` gets none.
    batch = (await w.client.post("/v1/single-use-token/batch_scribe", headers=auth(w.a.keys["jobs:read"]))).json()["token"]
    messages, code = await ws_attempt(w.app, path, f"{WS_QUERY}&token={batch}")
    assert ws_error(messages) == "auth_error" and code == 1008
    refused = await w.client.post("/v1/single-use-token/realtime_scribe", headers=auth(w.a.keys["jobs:read"]))
    assert refused.status_code == 403, refused.text


async def test_batch_token_is_single_use_short_lived_and_scoped(world: World) -> None:
    w = world
    job = await add_job(w.services, w.a.id)
    url = f"/v1/speech-to-text/transcripts/{job}"
    response = await w.client.post(
        "/v1/single-use-token/batch_scribe", headers=auth(w.a.keys["jobs:read"]), params={"ttl_seconds": 30}
    )
    token = response.json()["token"]
    assert (await w.client.get(url, params={"token": token})).status_code == 200
    again = await w.client.get(url, params={"token": token})
    assert again.status_code == 401 and token not in again.text

    # The token carries the issuing key's scopes (here jobs:read only): no delete with it.
    token = (await w.client.post("/v1/single-use-token/batch_scribe", headers=auth(w.a.keys["jobs:read"]))).json()["token"]
    assert (await w.client.delete(url, params={"token": token})).status_code == 403
    # Tokens only stand in for keys where a route accepts them.
    token = (await w.client.post("/v1/single-use-token/batch_scribe", headers=auth(w.a.keys["admin"]))).json()["token"]
    assert (await w.client.get(f"/v1/audio/transcriptions/{job}", params={"token": token})).status_code == 401
    # Another tenant's transcript stays 404 through a token too.
    token = (await w.client.post("/v1/single-use-token/batch_scribe", headers=auth(w.a.keys["jobs:read"]))).json()["token"]
    assert (await w.client.get(f"/v1/speech-to-text/transcripts/{w.b_job}", params={"token": token})).status_code == 404

    # Native issuance: lifetime and scopes are stated; the TTL bound is enforced.
    response = await w.client.post(
        "/v1/tokens", headers=auth(w.a.keys["jobs:write"]), json={"type": "batch_scribe", "ttl_seconds": 60}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["scopes"] == ["jobs:write"] and body["type"] == "batch_scribe"
    ttl = await w.services.redis.ttl("dalston:token:" + hashlib.sha256(body["token"].encode()).hexdigest())
    assert 0 < ttl <= 60
    too_long = await w.client.post(
        "/v1/tokens", headers=auth(w.a.keys["jobs:write"]), json={"type": "batch_scribe", "ttl_seconds": 3600}
    )
    assert too_long.status_code == 400
    wrong = await w.client.post("/v1/tokens", headers=auth(w.a.keys["jobs:write"]), json={"type": "realtime_scribe"})
    assert wrong.status_code == 403


async def test_token_dies_with_its_key(world: World) -> None:
    w = world
    secret = generate_key()
    async with w.services.sessionmaker() as db, db.begin():
        row = ApiKey(tenant_id=w.a.id, name="short", prefix=key_prefix(secret), key_hash=hash_key(secret), scopes=["jobs:read"])
        db.add(row)
    job = await add_job(w.services, w.a.id)
    token = (await w.client.post("/v1/single-use-token/batch_scribe", headers=auth(secret))).json()["token"]
    revoked = await w.client.delete(f"/v1/keys/{row.id}", headers=auth(w.a.keys["admin"]))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    response = await w.client.get(f"/v1/speech-to-text/transcripts/{job}", params={"token": token})
    assert response.status_code == 401, response.text
    async with w.services.sessionmaker() as db:
        assert (await db.scalar(select(ApiKey.revoked_at).where(ApiKey.id == row.id))) is not None
