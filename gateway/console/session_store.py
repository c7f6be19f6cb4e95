"""Console sessions in Redis, and the cookie that names one.

A browser that logs in with an API key gets a random cookie instead of keeping the key.
Redis holds the session under the sha256 of the cookie (as single-use tokens are held),
so reading Redis opens no session; the session names its key by id, never the key
itself, and gateway.auth resolves that key on every request, so revoking the key or
changing its scopes takes effect at once. The session expires in Redis after
`console_session_ttl_s` whatever the browser does with the cookie.

An admin's session may act for another tenant (`tenant_id`): kept here rather than sent
by the page on each request, so the audio player, downloads and WebSockets (which cannot
carry custom headers) act for the same tenant as the page's own requests.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection
from starlette.responses import Response

from gateway.services import Services
from shared import keys

COOKIE_NAME = "dalston_session"
CSRF_HEADER = "X-CSRF-Token"
# secrets.token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_COOKIE_CHARS = 128


class SessionRecord(BaseModel):
    key_id: uuid.UUID
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    tenant_id: uuid.UUID | None = None  # the tenant an admin acts for; None: the key's own


def _redis_key(cookie: str) -> str:
    return keys.console_session(hashlib.sha256(cookie.encode()).hexdigest())


async def create(services: Services, key_id: uuid.UUID) -> tuple[str, SessionRecord]:
    """A new session for `key_id`: the cookie value (shown only to the browser) and its record."""
    cookie = secrets.token_urlsafe(32)
    ttl = services.settings.console_session_ttl_s
    now = datetime.now(UTC)
    record = SessionRecord(
        key_id=key_id, csrf_token=secrets.token_urlsafe(32), created_at=now, expires_at=now + timedelta(seconds=ttl)
    )
    await services.redis.set(_redis_key(cookie), record.model_dump_json(), ex=ttl)
    return cookie, record


async def load(services: Services, cookie: str) -> SessionRecord | None:
    """The live session a cookie names, or None (unknown, ended or expired)."""
    if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
        return None
    raw = await services.redis.get(_redis_key(cookie))
    if raw is None:
        return None
    try:
        record = SessionRecord.model_validate_json(raw)
    except ValidationError:
        return None
    # Redis expires the key itself; this also holds if the TTL was lost (e.g. a restore).
    return record if record.expires_at > datetime.now(UTC) else None


async def save(services: Services, cookie: str, record: SessionRecord) -> None:
    """Store a changed record under the same cookie, keeping the session's expiry."""
    await services.redis.set(_redis_key(cookie), record.model_dump_json(), keepttl=True, xx=True)


async def end(services: Services, cookie: str) -> None:
    await services.redis.delete(_redis_key(cookie))


def over_tls(conn: HTTPConnection) -> bool:
    """Whether the browser reached us over TLS, directly or through a proxy that says so."""
    forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return conn.url.scheme in ("https", "wss") or forwarded == "https"


def set_cookie(response: Response, conn: HTTPConnection, cookie: str, max_age: int) -> None:
    # HttpOnly: page scripts never see it; SameSite=Strict: other sites' pages do not send
    # it; Secure whenever the browser came over TLS (a plain-http localhost must still work).
    response.set_cookie(COOKIE_NAME, cookie, max_age=max_age, path="/", secure=over_tls(conn), httponly=True, samesite="strict")


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", secure=over_tls(conn), httponly=True, samesite="strict")


def clear_cookie_header(conn: HTTPConnection) -> str:
    """The `Set-Cookie` value that makes the browser drop a dead session cookie (for error answers)."""
    response = Response()
    clear_cookie(response, conn)
    return response.headers["set-cookie"]
