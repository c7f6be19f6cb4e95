"""`/v1/console/session`: log in to the console with an API key, read the session, log out.

The key is exchanged for a session cookie (gateway.console.session_store) and forgotten:
it is not stored, logged or sent back. What the session may do is exactly what its key may
do, checked again on every request (gateway.auth).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gateway import audit
from gateway.auth import ConsoleSession, Principal, authenticate_key, public, require_console_session
from gateway.console import session_store
from gateway.console.session_store import SessionRecord
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import ServicesDep
from shared.db import ApiKey, Tenant

log = structlog.get_logger("gateway.console.session")

router = APIRouter(prefix="/v1/console", tags=["console"], responses={s: {"model": ErrorResponse} for s in (400, 401, 403)})
CurrentSession = Annotated[ConsoleSession, Depends(require_console_session())]


class ConsoleLogin(BaseModel):
    # Long enough for any key Dalston issues or an operator's own DALSTON_API_KEY.
    api_key: str = Field(min_length=1, max_length=512, description="an API key; exchanged for a session cookie, not kept")


class ConsoleSessionOut(BaseModel):
    key_id: uuid.UUID
    key_name: str
    tenant_id: uuid.UUID
    tenant_name: str
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
        scopes=sorted(principal.scopes),
        expires_at=record.expires_at,
        csrf_token=record.csrf_token,
    )


@router.post("/session", status_code=201, response_model=ConsoleSessionOut, dependencies=[Depends(public())])
async def log_in(body: ConsoleLogin, request: Request, response: Response, services: ServicesDep) -> ConsoleSessionOut:
    """Exchange an API key for a console session: an HttpOnly, SameSite=Strict cookie
    (`dalston_session`, Secure over TLS) that lasts `DALSTON_CONSOLE_SESSION_TTL_S`."""
    principal = await authenticate_key(services, body.api_key.strip(), request)  # failures are audited there
    if principal is None:
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
