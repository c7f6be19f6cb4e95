"""`/v1/console/session`: log in to the console with an API key, read the session, log out.

The key is exchanged for a session cookie (gateway.console.session_store) and forgotten:
it is not stored, logged or sent back. What the session may do is exactly what its key may
do, checked again on every request (gateway.auth).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gateway import audit
from gateway.auth import ADMIN_SCOPE, ConsoleSession, Principal, authenticate_key, public, require_console_session
from gateway.console import login_throttle, session_store
from gateway.console.session_store import SessionRecord
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import ServicesDep
from shared.db import ApiKey, Tenant

log = structlog.get_logger("gateway.console.session")

router = APIRouter(prefix="/v1/console", tags=["console"], responses={s: {"model": ErrorResponse} for s in (400, 401, 403, 429)})
CurrentSession = Annotated[ConsoleSession, Depends(require_console_session())]


class ConsoleLogin(BaseModel):
    # Long enough for any key Dalston issues or an operator's own DALSTON_API_KEY.
    api_key: str = Field(min_length=1, max_length=512, description="an API key; exchanged for a session cookie, not kept")


class ConsoleSessionOut(BaseModel):
    key_id: uuid.UUID
    key_name: str
    tenant_id: uuid.UUID = Field(description="the tenant the session acts for: the key's own, or one an admin switched to")
    tenant_name: str
    key_tenant_id: uuid.UUID = Field(description="the key's own tenant")
    scopes: list[str] = Field(description="the key's scopes now: a session can do exactly what its key can")
    expires_at: datetime = Field(description="when the session ends on the server, whatever the browser keeps")
    csrf_token: str = Field(description="send as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with the cookie")


async def _session_out(services: ServicesDep, principal: Principal, record: SessionRecord) -> ConsoleSessionOut:
    async with services.sessionmaker() as db:
        key = await db.get(ApiKey, principal.key_id)
        tenant = await db.get(Tenant, principal.tenant_id)
    if key is None or tenant is None:  # deleted since it authenticated (keys are revoked, not deleted)
        raise ApiError(401, "invalid_api_key", "the API key is invalid, revoked or expired")
    return ConsoleSessionOut(
        key_id=key.id,
        key_name=key.name,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        key_tenant_id=key.tenant_id,
        scopes=sorted(principal.scopes),
        expires_at=record.expires_at,
        csrf_token=record.csrf_token,
    )


@router.post("/session", status_code=201, response_model=ConsoleSessionOut, dependencies=[Depends(public())])
async def log_in(body: ConsoleLogin, request: Request, response: Response, services: ServicesDep) -> ConsoleSessionOut:
    """Exchange an API key for a console session: an HttpOnly, SameSite=Strict cookie
    (`dalston_session`, Secure over TLS) that lasts `DALSTON_CONSOLE_SESSION_TTL_S`."""
    await login_throttle.check(request, services)  # 429 after too many failures from this address
    principal = await authenticate_key(services, body.api_key.strip(), request)  # failures are audited there
    if principal is None:
        await login_throttle.failed(request, services)
        raise ApiError(401, "invalid_api_key", "the API key is invalid, revoked or expired")
    cookie, record = await session_store.create(services, principal.key_id)
    session_store.set_cookie(response, request, cookie, services.settings.console_session_ttl_s)
    await audit.record(
        services.sessionmaker,
        audit.CONSOLE_LOGIN,
        conn=request,
        principal=principal,
        resource_type="api_key",
        resource_id=principal.key_id,
        details={"expires_at": record.expires_at.isoformat()},
    )
    log.info("console_session_created", key_id=str(principal.key_id), tenant_id=str(principal.tenant_id))
    return await _session_out(services, principal, record)


@router.get("/session", response_model=ConsoleSessionOut)
async def read_session(session: CurrentSession, services: ServicesDep) -> ConsoleSessionOut:
    """The current cookie's session: its key, tenant, scopes (as the key has them now),
    expiry and CSRF token. 401 when there is none or it has ended."""
    return await _session_out(services, session.principal, session.record)


@router.delete("/session", status_code=204, response_class=Response)
async def log_out(session: CurrentSession, request: Request, services: ServicesDep) -> Response:
    """End the session on the server and clear the cookie (needs `X-CSRF-Token`)."""
    await session_store.end(services, session.cookie)
    await audit.record(
        services.sessionmaker,
        audit.CONSOLE_LOGOUT,
        conn=request,
        principal=session.principal,
        resource_type="api_key",
        resource_id=session.principal.key_id,
    )
    log.info("console_session_ended", key_id=str(session.principal.key_id))
    response = Response(status_code=204)
    session_store.clear_cookie(response, request)
    return response


class TenantSwitch(BaseModel):
    tenant_id: uuid.UUID | None = Field(description="the tenant to act for; null: back to the key's own")


@router.put("/session/tenant", response_model=ConsoleSessionOut)
async def switch_tenant(
    body: TenantSwitch, session: CurrentSession, request: Request, services: ServicesDep
) -> ConsoleSessionOut:
    """Admin keys: make this session act for another tenant (its jobs, sessions, webhooks,
    audio and exports) until switched back or logged out. API keys in headers are not
    affected: they always act for their own tenant."""
    principal = session.principal
    if not principal.allows(ADMIN_SCOPE):
        raise ApiError(403, "insufficient_scope", "only a key with the 'admin' scope may act for another tenant")
    async with services.sessionmaker() as db:
        key = await db.get(ApiKey, principal.key_id)
        target = await db.get(Tenant, body.tenant_id) if body.tenant_id is not None else None
    if key is None:
        raise ApiError(401, "invalid_api_key", "the API key is invalid, revoked or expired")
    if body.tenant_id is not None and target is None:
        raise ApiError(404, "tenant_not_found", f"no tenant has the id {body.tenant_id}")
    record = session.record.model_copy(update={"tenant_id": None if body.tenant_id == key.tenant_id else body.tenant_id})
    await session_store.save(services, session.cookie, record)
    acting = replace(principal, tenant_id=body.tenant_id or key.tenant_id)
    await audit.record(
        services.sessionmaker,
        audit.CONSOLE_TENANT_SWITCHED,
        conn=request,
        principal=acting,
        resource_type="tenant",
        resource_id=acting.tenant_id,
        details={"from_tenant_id": str(principal.tenant_id)},
    )
    return await _session_out(services, acting, record)
