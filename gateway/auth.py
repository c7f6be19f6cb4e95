"""API key authentication and scope checks, declared on every route, deny by default.

Keys arrive as `Authorization: Bearer <key>` (native, OpenAI) or `xi-api-key: <key>`
(ElevenLabs); WebSockets also take `?api_key=` because browsers cannot set headers there.
Only their sha256 is stored, so lookup is by hash. Keys are never logged, and no error
message repeats what the caller sent.

Every route declares what it needs through one of the dependencies built here:
`require_scope(...)` (one of these scopes; `admin` implies every scope),
`require_key()` (any valid key), `require_websocket_scope(...)` or `public()`. Each
carries an `Access` that `check_routes` reads: `create_app` refuses to build an app with a
route that declares nothing, so a new route cannot be reachable without a decision.

Single-use tokens (`POST /v1/single-use-token/{type}`, ElevenLabs; `POST /v1/tokens`,
native) stand in for a key where a client cannot keep a key secret (browsers): `?token=`,
valid for one request of one type, for at most 15 minutes, carrying only the scopes that
type needs. They live in Redis, stored only by hash, and die with the key that issued them.

Console sessions (gateway.console) let a browser use the API without holding a key: a
request with no key or token in its headers or query string is authenticated by a valid
`dalston_session` cookie as the key the session was made from, resolved on every request
(its current scopes; revoked or expired, the session ends). An admin key's session may act
for another tenant (`PUT /v1/console/session/tenant`); nothing else can. Because browsers send cookies
on their own, a cookie-authenticated request that changes something must also send the
session's CSRF token in `X-CSRF-Token`, and a cookie-authenticated WebSocket must come from
the gateway's own origin. Header keys are not affected: a browser never adds them itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import structlog
from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Route, WebSocketRoute

if TYPE_CHECKING:
    from fastapi.routing import RouteContext

iter_route_contexts: Callable[[Sequence[BaseRoute | RouteContext]], Iterator[RouteContext]] | None
try:  # FastAPI >= 0.16x keeps included routers lazy; this flattens them
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI
    iter_route_contexts = None

from gateway import audit, ratelimit
from gateway.console import session_store
from gateway.console.session_store import COOKIE_NAME, CSRF_HEADER, SessionRecord
from gateway.errors import ApiError, outage_error
from gateway.services import Services, ServicesDep
from shared import keys
from shared.bootstrap import hash_key
from shared.db import ApiKey

log = structlog.get_logger("gateway.auth")

ADMIN_SCOPE = "admin"
SCOPES = ("jobs:read", "jobs:write", "realtime", "webhooks", ADMIN_SCOPE)
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# What each token type may do: a token never carries more than its type needs.
TOKEN_SCOPES = {"realtime_scribe": frozenset({"realtime"}), "batch_scribe": frozenset({"jobs:read", "jobs:write"})}
TOKEN_TYPES = tuple(TOKEN_SCOPES)
TOKEN_TTL_SECONDS = 15 * 60
# Methods a cookie-authenticated request may use only with the session's CSRF token.
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_xi_api_key = APIKeyHeader(name="xi-api-key", auto_error=False, description="API key (ElevenLabs style)")


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]
    via: str = "key"  # key | token | session

    def allows(self, scope: str) -> bool:
        return ADMIN_SCOPE in self.scopes or scope in self.scopes

    def allows_any(self, scopes: frozenset[str]) -> bool:
        return not scopes or any(self.allows(s) for s in scopes)


@dataclass(frozen=True)
class Access:
    """What a route demands: one of `scopes` (empty: any valid key), or nothing (`public`)."""

    scopes: frozenset[str] = frozenset()
    public: bool = False
    token_type: str | None = None  # a single-use token of this type also works
    websocket: bool = False
    session: bool = False  # only a console session cookie (the session's own routes)


def _declare(dependency: Callable[..., Any], access: Access) -> Callable[..., Any]:
    dependency.access = access  # type: ignore[attr-defined]
    return dependency


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def _forbidden(scopes: frozenset[str]) -> ApiError:
    wanted = " or ".join(repr(s) for s in sorted(scopes))
    return ApiError(403, "insufficient_scope", f"the API key lacks the {wanted} scope")


MISSING_KEY_MESSAGE = "an API key is required: send 'Authorization: Bearer <key>' or 'xi-api-key: <key>'"


# -- keys and tokens ------------------------------------------------------------------


async def authenticate_key(services: Services, key: str, conn: HTTPConnection | None = None) -> Principal | None:
    """The principal for a presented key, or None when it is unknown, revoked or expired
    (recorded in the audit log, with the key's id when the key exists)."""
    now = datetime.now(UTC)
    async with services.sessionmaker() as db:
        row = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        reason = None
        if row is None:
            reason = "unknown_key"
        elif row.revoked_at is not None:
            reason = "revoked_key"
        elif row.expires_at is not None and row.expires_at <= now:
            reason = "expired_key"
        else:
            await _touch(db, row, now)
    if reason is not None:
        await _audit_failure(services, conn, reason, tenant_id=row.tenant_id if row else None, key_id=row.id if row else None)
        return None
    assert row is not None  # an unknown key always has a reason
    return Principal(key_id=row.id, tenant_id=row.tenant_id, scopes=frozenset(row.scopes))


async def _touch(db: AsyncSession, row: ApiKey, now: datetime) -> None:
    """Record the key's use in `last_used_at`, at most once a minute."""
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_RESOLUTION:
        return
    # Conditional so concurrent requests from one key write at most once a minute.
    await db.execute(
        update(ApiKey)
        .where(ApiKey.id == row.id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
    )
    await db.commit()


async def _audit_failure(
    services: Services,
    conn: HTTPConnection | None,
    reason: str,
    *,
    tenant_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
) -> None:
    details: dict[str, Any] = {"reason": reason}
    if conn is not None:
        details["path"] = conn.url.path
    await audit.record(
        services.sessionmaker,
        audit.AUTH_FAILED,
        conn=conn,
        tenant_id=tenant_id,
        resource_type="api_key" if key_id else None,
        resource_id=key_id,
        outcome="failure",
        details=details,
    )


def token_scopes(principal: Principal, token_type: str) -> frozenset[str]:
    """The scopes a `token_type` token issued by `principal` carries: what the type needs
    and the key holds, never `admin`."""
    return frozenset(s for s in TOKEN_SCOPES[token_type] if principal.allows(s))


def _token_key(token: str) -> str:
    return keys.single_use_token(hashlib.sha256(token.encode()).hexdigest())


async def issue_token(services: Services, principal: Principal, token_type: str, ttl_seconds: int = TOKEN_TTL_SECONDS) -> str:
    """A single-use token that acts as `principal` for one `token_type` request."""
    scopes = token_scopes(principal, token_type)
    if not scopes:
        raise _forbidden(TOKEN_SCOPES[token_type])
    token = "sut_" + secrets.token_urlsafe(32)
    grant = {"key_id": str(principal.key_id), "tenant_id": str(principal.tenant_id), "scopes": sorted(scopes), "type": token_type}
    await services.redis.set(_token_key(token), json.dumps(grant), ex=ttl_seconds)
    return token


async def authenticate_token(services: Services, token: str, token_type: str, conn: HTTPConnection | None = None) -> Principal:
    """Consume a single-use token (atomically: a second use fails) and return its principal.
    The issuing key must still be valid: revoking a key kills its outstanding tokens."""
    raw = await services.redis.getdel(_token_key(token.strip())) if token.strip() else None
    if raw is None:
        await _audit_failure(services, conn, "invalid_token")
        raise _unauthorized("invalid_token", "the token is invalid, expired or already used")
    grant = json.loads(raw)
    if grant["type"] != token_type:
        await _audit_failure(services, conn, "wrong_token_type")
        raise _unauthorized("invalid_token", f"this is a {grant['type']} token; this endpoint needs a {token_type} token")
    now = datetime.now(UTC)
    async with services.sessionmaker() as db:
        key = await db.get(ApiKey, uuid.UUID(grant["key_id"]))
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        await _audit_failure(
            services, conn, "token_key_inactive", tenant_id=uuid.UUID(grant["tenant_id"]), key_id=uuid.UUID(grant["key_id"])
        )
        raise _unauthorized("invalid_token", "the key that issued this token is revoked or expired")
    return Principal(
        key_id=uuid.UUID(grant["key_id"]), tenant_id=uuid.UUID(grant["tenant_id"]), scopes=frozenset(grant["scopes"]), via="token"
    )


# -- console sessions -----------------------------------------------------------------


def _session_refused(conn: HTTPConnection, message: str) -> ApiError:
    # The dead cookie is cleared with the refusal, so the browser stops sending it.
    headers = {"WWW-Authenticate": "Bearer", "Set-Cookie": session_store.clear_cookie_header(conn)}
    return ApiError(401, "invalid_session", message, headers=headers)


def _same_origin(conn: HTTPConnection) -> bool:
    """Whether the browser page that opened `conn` was served by this host (Origin vs Host)."""
    origin = urlsplit(conn.headers.get("origin", ""))
    host = conn.headers.get("host", "")
    return bool(host) and origin.scheme in ("http", "https") and origin.netloc.lower() == host.lower()


async def authenticate_session(services: Services, conn: HTTPConnection, cookie: str) -> tuple[Principal, SessionRecord]:
    """The principal behind a console session cookie: the key it was made from, as that key
    is now. Mutating requests must carry the session's CSRF token; WebSockets must come from
    the gateway's own origin (a cookie is sent by whichever page opens the connection)."""
    record = await session_store.load(services, cookie)
    if record is None:
        await _audit_failure(services, conn, "invalid_session")
        raise _session_refused(conn, "the console session is invalid or has expired; log in again")
    now = datetime.now(UTC)
    async with services.sessionmaker() as db:
        row = await db.get(ApiKey, record.key_id)
        active = row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
        if row is not None and active:
            await _touch(db, row, now)
    if row is None or not active:
        await session_store.end(services, cookie)  # a revoked or expired key ends its sessions
        tenant_id = row.tenant_id if row else None
        await _audit_failure(services, conn, "session_key_inactive", tenant_id=tenant_id, key_id=record.key_id)
        raise _session_refused(conn, "the API key this console session was made from is revoked or expired; log in again")
    # Acting for another tenant needs the admin scope now, not only when the switch was made.
    acting = record.tenant_id if record.tenant_id is not None and ADMIN_SCOPE in row.scopes else row.tenant_id
    principal = Principal(key_id=row.id, tenant_id=acting, scopes=frozenset(row.scopes), via="session")
    if conn.scope["type"] == "websocket":
        if not _same_origin(conn):
            await _audit_failure(services, conn, "cross_origin_session", tenant_id=row.tenant_id, key_id=row.id)
            raise ApiError(403, "origin_refused", "a console session opens WebSockets only from pages of this server's origin")
    elif conn.scope["method"] in MUTATING_METHODS:
        sent = conn.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), record.csrf_token.encode()):
            await _audit_failure(services, conn, "csrf_failed", tenant_id=row.tenant_id, key_id=row.id)
            raise ApiError(
                403,
                "csrf_failed",
                "a request authenticated by the console session cookie must send the session's csrf_token "
                f"in the {CSRF_HEADER} header",
            )
    return principal, record


def _session_cookie(conn: HTTPConnection) -> str:
    """The console session cookie, unless the query string carries a credential of its own."""
    if conn.query_params.get("token") or conn.query_params.get("api_key"):
        return ""
    return conn.cookies.get(COOKIE_NAME, "").strip()


async def _principal(conn: HTTPConnection, services: Services, key: str, token: str, access: Access) -> Principal:
    """Authenticate a key (preferred), a token or a console session cookie, then check the
    scopes `access` demands."""
    if key:
        principal = await authenticate_key(services, key, conn)
        if principal is None:
            raise _unauthorized("invalid_api_key", "the API key is invalid, revoked or expired")
    elif token and access.token_type:
        principal = await authenticate_token(services, token, access.token_type, conn)
    elif not token and (cookie := _session_cookie(conn)):
        principal, _ = await authenticate_session(services, conn, cookie)
    else:
        raise _unauthorized("missing_api_key", MISSING_KEY_MESSAGE)
    if not principal.allows_any(access.scopes):
        await _audit_failure(services, conn, "insufficient_scope", tenant_id=principal.tenant_id, key_id=principal.key_id)
        raise _forbidden(access.scopes)
    conn.state.principal = principal
    await ratelimit.enforce_requests(conn, services, principal.tenant_id)  # 429 past the tenant's limit
    return principal


def _header_key(bearer: HTTPAuthorizationCredentials | None, xi_api_key: str | None) -> str:
    return (xi_api_key or "").strip() or (bearer.credentials.strip() if bearer else "")


# -- route declarations ---------------------------------------------------------------


def _checked(scopes: tuple[str, ...]) -> frozenset[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:  # a typo here would otherwise lock everyone out (or, worse, nobody)
        raise ValueError(f"unknown scope(s) {unknown}; scopes are {', '.join(SCOPES)}")
    return frozenset(scopes)


def require_scope(*scopes: str, token_type: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A key whose scopes allow one of `scopes` (with `token_type`, a `?token=` single-use
    token of that type also works)."""
    if not scopes:
        raise ValueError("require_scope needs at least one scope; use require_key() for any key")
    access = Access(scopes=_checked(scopes), token_type=token_type)

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        xi_api_key: Annotated[str | None, Depends(_xi_api_key)],
        services: ServicesDep,
        token: str | None = Query(None, description="single-use token", include_in_schema=token_type is not None),
    ) -> Principal:
        return await _principal(request, services, _header_key(bearer, xi_api_key), (token or "").strip(), access)

    return _declare(dependency, access)


def require_key() -> Callable[..., Awaitable[Principal]]:
    """Any valid key, whatever its scopes (e.g. `GET /v1/me`, asking a token)."""
    access = Access()

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        xi_api_key: Annotated[str | None, Depends(_xi_api_key)],
        services: ServicesDep,
    ) -> Principal:
        return await _principal(request, services, _header_key(bearer, xi_api_key), "", access)

    return _declare(dependency, access)


# Kept for callers that want "any key" by name.
authenticate = require_key()


@dataclass(frozen=True)
class ConsoleSession:
    principal: Principal
    record: SessionRecord
    cookie: str


def require_console_session() -> Callable[..., Awaitable[ConsoleSession]]:
    """The console session cookie itself, for the session's own routes (read it, log out):
    an API key in a header is not a session."""
    access = Access(session=True)

    async def dependency(request: Request, services: ServicesDep) -> ConsoleSession:
        cookie = request.cookies.get(COOKIE_NAME, "").strip()
        if not cookie:
            raise _unauthorized("missing_session", "no console session: log in with POST /v1/console/session")
        principal, record = await authenticate_session(services, request, cookie)
        request.state.principal = principal
        await ratelimit.enforce_requests(request, services, principal.tenant_id)  # 429 past the tenant's limit
        return ConsoleSession(principal=principal, record=record, cookie=cookie)

    return _declare(dependency, access)


@dataclass(frozen=True)
class WebSocketAuth:
    """The outcome of authenticating a WebSocket: a principal, or the error to refuse with.
    Returned rather than raised because each protocol words its refusal in its own shape."""

    principal: Principal | None = None
    error: ApiError | None = None


def require_websocket_scope(scope: str, *, token_type: str) -> Callable[..., Awaitable[WebSocketAuth]]:
    """A WebSocket's credentials: headers, or (browsers) `?api_key=` or a `?token=`."""
    access = Access(scopes=_checked((scope,)), token_type=token_type, websocket=True)

    async def dependency(websocket: WebSocket) -> WebSocketAuth:
        services: Services = websocket.app.state.services
        auth = websocket.headers.get("authorization") or ""
        key = (websocket.headers.get("xi-api-key") or "").strip()
        if not key and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
        key = key or (websocket.query_params.get("api_key") or "").strip()
        token = (websocket.query_params.get("token") or "").strip()
        try:
            return WebSocketAuth(principal=await _principal(websocket, services, key, token, access))
        except ApiError as exc:
            if exc.code == "missing_api_key":
                exc = _unauthorized(
                    exc.code, MISSING_KEY_MESSAGE + ", or (browsers) the 'api_key' or single-use 'token' query parameter"
                )
            return WebSocketAuth(error=exc)
        except Exception as exc:
            # PostgreSQL or Redis down: the edge refuses with 1013 ("try again later").
            outage = outage_error(exc)
            if outage is None:
                raise
            log.warning("dependency_unavailable", path=websocket.url.path, error=f"{type(exc).__name__}: {exc}")
            return WebSocketAuth(error=outage)

    return _declare(dependency, access)


def public() -> Callable[[], None]:
    """Declares a route open to anyone (health checks, docs)."""

    def dependency() -> None:
        return None

    return _declare(dependency, Access(public=True))


def _find_access(dependant: Dependant) -> Access | None:
    for sub in dependant.dependencies:
        access = getattr(sub.call, "access", None)
        if isinstance(access, Access):
            return access
        found = _find_access(sub)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class DeclaredRoute:
    path: str
    methods: frozenset[str]  # empty for WebSocket and mounted routes
    websocket: bool
    access: Access | None  # None: the route declares nothing (check_routes refuses it)


def _access(app: FastAPI, route: Any, original: BaseRoute) -> Access | None:
    declared = getattr(original, "access", None)  # e.g. a Mount marked with `declare_public`
    if isinstance(declared, Access):
        return declared
    if isinstance(original, (APIRoute, APIWebSocketRoute)):
        # The effective route's dependant includes dependencies added by include_router.
        return _find_access(getattr(route, "dependant", None) or original.dependant)
    # FastAPI's own documentation routes are plain Starlette routes.
    framework = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    if isinstance(original, Route) and getattr(route, "path", None) in framework:
        return Access(public=True)
    return None


def declared_routes(app: FastAPI) -> list[DeclaredRoute]:
    """Every route of `app` (included routers flattened) with the access it declares."""
    pairs: list[tuple[BaseRoute | RouteContext, BaseRoute]]
    if iter_route_contexts is not None:
        pairs = [(ctx, ctx.original_route) for ctx in iter_route_contexts(app.routes)]
    else:  # FastAPI before lazily included routers: app.routes is already flat
        pairs = [(r, r) for r in app.routes]
    return [
        DeclaredRoute(
            path=getattr(route, "path", None) or repr(original),
            methods=frozenset(getattr(route, "methods", None) or ()),
            websocket=isinstance(original, (APIWebSocketRoute, WebSocketRoute)),
            access=_access(app, route, original),
        )
        for route, original in pairs
    ]


def declare_public(route: BaseRoute) -> BaseRoute:
    """Mark a non-FastAPI route (a static Mount) as public."""
    route.access = Access(public=True)  # type: ignore[attr-defined]
    return route


def check_routes(app: FastAPI) -> None:
    """Deny by default: refuse an app in which any route declares no access."""
    undeclared = [r.path for r in declared_routes(app) if r.access is None]
    if undeclared:
        raise RuntimeError(f"routes without a declared scope (use gateway.auth.require_scope/public): {undeclared}")
