"""API key authentication and scope checks.

Keys arrive as `Authorization: Bearer <key>` (native, OpenAI) or `xi-api-key: <key>`
(ElevenLabs). Only their sha256 is stored, so lookup is by hash. Keys are never logged.

Single-use tokens (`POST /v1/single-use-token/{type}`, ElevenLabs) stand in for a key
where a client cannot set headers (browsers, WebSockets): `?token=...`, valid for one
request of one type, for 15 minutes. They live in Redis, also stored only by hash.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import ApiError
from gateway.services import ServicesDep
from shared.bootstrap import hash_key
from shared.db import ApiKey

ADMIN_SCOPE = "admin"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_TYPES = ("realtime_scribe", "batch_scribe")
TOKEN_TTL_SECONDS = 15 * 60

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_xi_api_key = APIKeyHeader(name="xi-api-key", auto_error=False, description="API key (ElevenLabs style)")


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return ADMIN_SCOPE in self.scopes or scope in self.scopes


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate_key(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> Principal | None:
    """The principal for a presented key, or None when it is unknown, revoked or expired."""
    now = datetime.now(UTC)
    async with sessionmaker() as db:
        row = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            # Conditional so concurrent requests from one key write at most once a minute.
            await db.execute(
                update(ApiKey)
                .where(ApiKey.id == row.id)
                .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
                .values(last_used_at=now)
            )
            await db.commit()
        return Principal(key_id=row.id, tenant_id=row.tenant_id, scopes=frozenset(row.scopes))


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    xi_api_key: Annotated[str | None, Depends(_xi_api_key)],
    services: ServicesDep,
) -> Principal:
    key = (xi_api_key or "").strip() or (bearer.credentials.strip() if bearer else "")
    if not key:
        raise _unauthorized(
            "missing_api_key", "an API key is required: send 'Authorization: Bearer <key>' or 'xi-api-key: <key>'"
        )
    principal = await authenticate_key(services.sessionmaker, key)
    if principal is None:
        raise _unauthorized("invalid_api_key", "the API key is invalid, revoked or expired")
    request.state.principal = principal
    return principal


def _token_key(token: str) -> str:
    return "dalston:token:" + hashlib.sha256(token.encode()).hexdigest()


async def issue_token(redis: aioredis.Redis, principal: Principal, token_type: str) -> str:
    """A single-use token that acts as `principal` for one `token_type` request."""
    token = "sut_" + secrets.token_urlsafe(32)
    grant = {"key_id": str(principal.key_id), "tenant_id": str(principal.tenant_id), "scopes": sorted(principal.scopes), "type": token_type}
    await redis.set(_token_key(token), json.dumps(grant), ex=TOKEN_TTL_SECONDS)
    return token


async def authenticate_token(redis: aioredis.Redis, token: str, token_type: str) -> Principal:
    """Consume a single-use token (atomically: a second use fails) and return its principal."""
    raw = await redis.getdel(_token_key(token.strip())) if token.strip() else None
    if raw is None:
        raise _unauthorized("invalid_token", "the token is invalid, expired or already used")
    grant = json.loads(raw)
    if grant["type"] != token_type:
        raise _unauthorized("invalid_token", f"this is a {grant['type']} token; this endpoint needs a {token_type} token")
    return Principal(key_id=uuid.UUID(grant["key_id"]), tenant_id=uuid.UUID(grant["tenant_id"]), scopes=frozenset(grant["scopes"]))


def authenticate_or_token(token_type: str) -> Callable[..., Awaitable[Principal]]:
    """Like `authenticate`, but a `?token=` single-use token of `token_type` also works."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        xi_api_key: Annotated[str | None, Depends(_xi_api_key)],
        services: ServicesDep,
        token: str | None = Query(None, description="single-use token (POST /v1/single-use-token/{token_type})"),
    ) -> Principal:
        has_key = bool((xi_api_key or "").strip() or (bearer.credentials.strip() if bearer else ""))
        if token and not has_key:
            principal = await authenticate_token(services.redis, token, token_type)
            request.state.principal = principal
            return principal
        return await authenticate(request, bearer, xi_api_key, services)

    return dependency


def require_scope(scope: str, *, token_type: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A key (or, with `token_type`, a single-use token) whose scopes allow `scope`."""
    authenticator = authenticate_or_token(token_type) if token_type else authenticate

    # A default, not an Annotated hint: hints are strings here and cannot see `authenticator`.
    async def dependency(principal: Principal = Depends(authenticator)) -> Principal:  # noqa: B008
        if not principal.allows(scope):
            raise ApiError(403, "insufficient_scope", f"the API key lacks the {scope!r} scope")
        return principal

    return dependency
