"""API key authentication and scope checks.

Keys arrive as `Authorization: Bearer <key>` (native, OpenAI) or `xi-api-key: <key>`
(ElevenLabs). Only their sha256 is stored, so lookup is by hash. Keys are never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
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


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            raise ApiError(403, "insufficient_scope", f"the API key lacks the {scope!r} scope")
        return principal

    return dependency
