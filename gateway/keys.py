"""The admin API (keys, tenants, the audit log) and the caller's own view (`/v1/me`, tokens).

- `POST /v1/keys`: create a key for a tenant (created by name on request), with scopes and
  an optional expiry. The key is in this response only; Dalston keeps its sha256.
- `GET /v1/keys`, `GET /v1/keys/{id}`: keys without secrets. `DELETE /v1/keys/{id}`: revoke.
- `GET /v1/tenants`: every tenant, with its count of active keys.
- `GET /v1/audit`: the audit log, newest first, with a cursor and filters.
- `GET /v1/me`: the calling key's tenant, identity, scopes and expiry.
- `POST /v1/tokens`: a short-lived single-use token for a browser.

`admin` is the operator's scope: it manages keys of every tenant and reads the whole audit
log. A key in a header never opens other tenants' jobs, transcripts or webhooks; an admin's
console session may, after an explicit, audited switch (`PUT /v1/console/session/tenant`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import audit
from gateway.auth import (
    ADMIN_SCOPE,
    SCOPES,
    TOKEN_SCOPES,
    TOKEN_TTL_SECONDS,
    Principal,
    issue_token,
    require_key,
    require_scope,
    token_scopes,
)
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from shared.bootstrap import generate_key, hash_key, key_prefix
from shared.db import ApiKey, AuditEvent, Tenant

router = APIRouter(prefix="/v1", tags=["keys"], responses={s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 409)})
Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]
AnyKey = Annotated[Principal, Depends(require_key())]
TokenIssuer = Annotated[Principal, Depends(require_scope(*sorted(set().union(*TOKEN_SCOPES.values()))))]

Scope = Literal["jobs:read", "jobs:write", "realtime", "webhooks", "admin"]
assert set(get_args(Scope)) == set(SCOPES)  # one list of scopes: gateway.auth.SCOPES
TENANT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# PostgreSQL text cannot hold NUL: refuse it here rather than fail in the driver.
NO_NUL = r"^[^\x00]*$"


class KeyCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=200, pattern=NO_NUL, description="what the key is for, e.g. 'ci' or 'team-a browser app'"
    )
    scopes: list[Scope] = Field(min_length=1)
    tenant: str | None = Field(None, pattern=TENANT_NAME, description="tenant name; default: the caller's tenant")
    create_tenant: bool = Field(False, description="create `tenant` if it does not exist yet")
    expires_at: AwareDatetime | None = None
    expires_in_seconds: int | None = Field(None, ge=60, le=10 * 365 * 86400)

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in_seconds is not None:
            raise ValueError("give expires_at or expires_in_seconds, not both")
        return self


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str


class TenantListItem(TenantOut):
    created_at: datetime
    active_keys: int = Field(description="keys neither revoked nor expired")


class TenantList(BaseModel):
    tenants: list[TenantListItem]


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    tenant: TenantOut
    scopes: list[str]
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the secret: shown once, store it now")


class KeyList(BaseModel):
    keys: list[KeyOut]


class MeKey(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class Me(BaseModel):
    tenant: TenantOut
    key: MeKey
    scopes: list[str]
    via: Literal["key", "token", "session"]


class TokenCreate(BaseModel):
    type: Literal["realtime_scribe", "batch_scribe"]
    ttl_seconds: int = Field(TOKEN_TTL_SECONDS, ge=1, le=TOKEN_TTL_SECONDS)


class TokenOut(BaseModel):
    token: str
    type: str
    scopes: list[str]
    expires_at: datetime


class AuditOut(BaseModel):
    id: int
    created_at: datetime
    action: str
    outcome: str
    tenant_id: uuid.UUID | None
    actor_key_id: uuid.UUID | None
    resource_type: str | None
    resource_id: str | None
    request_id: str | None
    client_ip: str | None
    details: dict


class AuditList(BaseModel):
    events: list[AuditOut]
    next_cursor: str | None


def _status(key: ApiKey, now: datetime) -> Literal["active", "revoked", "expired"]:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _out(key: ApiKey, tenant: Tenant) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        tenant=TenantOut(id=tenant.id, name=tenant.name),
        scopes=list(key.scopes),
        status=_status(key, datetime.now(UTC)),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


async def _load_key(db: AsyncSession, key_id: str, *, for_update: bool = False) -> tuple[ApiKey, Tenant]:
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise ApiError(404, "key_not_found", f"no API key {key_id!r}") from None
    query = select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.id == parsed)
    row = (await db.execute(query.with_for_update(of=ApiKey) if for_update else query)).first()
    if row is None:
        raise ApiError(404, "key_not_found", f"no API key {key_id!r}")
    return row[0], row[1]


# -- keys -----------------------------------------------------------------------------


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, request: Request, principal: Admin, services: ServicesDep) -> KeyCreated:
    """Create a key. The response holds the key itself, once: store it now."""
    now = datetime.now(UTC)
    expires_at = body.expires_at or (now + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None)
    if expires_at is not None and expires_at <= now:
        raise ApiError(400, "invalid_parameter", "expires_at must be in the future")
    secret = generate_key()
    try:
        key, tenant = await _insert_key(services, body, request, principal, secret, expires_at)
    except IntegrityError:  # a concurrent request created the same tenant first
        raise ApiError(409, "conflict", f"tenant {body.tenant!r} was created concurrently; retry") from None
    return KeyCreated(**_out(key, tenant).model_dump(), key=secret)


async def _insert_key(
    services: Services, body: KeyCreate, request: Request, principal: Principal, secret: str, expires_at: datetime | None
) -> tuple[ApiKey, Tenant]:
    async with services.sessionmaker() as db, db.begin():
        if body.tenant is None:
            tenant = await db.get(Tenant, principal.tenant_id)
            assert tenant is not None  # the caller's own key belongs to it
        else:
            tenant = await db.scalar(select(Tenant).where(Tenant.name == body.tenant))
            if tenant is None:
                if not body.create_tenant:
                    raise ApiError(404, "tenant_not_found", f"no tenant {body.tenant!r}; pass create_tenant=true to create it")
                tenant = Tenant(name=body.tenant)
                db.add(tenant)
                await db.flush()
                audit.add(
                    db,
                    audit.TENANT_CREATED,
                    conn=request,
                    principal=principal,
                    tenant_id=tenant.id,
                    resource_type="tenant",
                    resource_id=tenant.id,
                    details={"name": tenant.name},
                )
        key = ApiKey(
            tenant_id=tenant.id,
            name=body.name,
            prefix=key_prefix(secret),
            key_hash=hash_key(secret),
            scopes=sorted(set(body.scopes)),
            expires_at=expires_at,
        )
        db.add(key)
        await db.flush()
        await db.refresh(key)
        audit.add(
            db,
            audit.KEY_CREATED,
            conn=request,
            principal=principal,
            tenant_id=tenant.id,
            resource_type="api_key",
            resource_id=key.id,
            details={
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return key, tenant


@router.get("/keys", response_model=KeyList)
async def list_keys(
    principal: Admin,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(pattern=TENANT_NAME, description="only this tenant's keys (by name)")] = None,
    include_revoked: bool = False,
) -> KeyList:
    """Every tenant's keys (or one tenant's), oldest first, without their secrets."""
    query = select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    if tenant is not None:
        query = query.where(Tenant.name == tenant)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    async with services.sessionmaker() as db:
        rows = (await db.execute(query)).all()
    return KeyList(keys=[_out(k, t) for k, t in rows])


@router.get("/tenants", response_model=TenantList)
async def list_tenants(principal: Admin, services: ServicesDep) -> TenantList:
    """Every tenant by name, with how many active keys it has (tenants are created with keys)."""
    now = datetime.now(UTC)
    active = func.count(ApiKey.id).filter(ApiKey.revoked_at.is_(None), (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now))
    query = select(Tenant, active).outerjoin(ApiKey, ApiKey.tenant_id == Tenant.id).group_by(Tenant.id).order_by(Tenant.name)
    async with services.sessionmaker() as db:
        rows = (await db.execute(query)).all()
    return TenantList(
        tenants=[TenantListItem(id=t.id, name=t.name, created_at=t.created_at, active_keys=count) for t, count in rows]
    )


@router.get("/keys/{key_id}", response_model=KeyOut)
async def get_key(key_id: str, principal: Admin, services: ServicesDep) -> KeyOut:
    async with services.sessionmaker() as db:
        return _out(*await _load_key(db, key_id))


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, request: Request, principal: Admin, services: ServicesDep) -> KeyOut:
    """Revoke a key: it, and every token it issued, stops working at once. Revoking a
    revoked key changes nothing. The last active admin key cannot be revoked (409)."""
    now = datetime.now(UTC)
    async with services.sessionmaker() as db, db.begin():
        key, tenant = await _load_key(db, key_id, for_update=True)
        if key.revoked_at is None:
            if ADMIN_SCOPE in key.scopes and _status(key, now) == "active":
                # Lock every admin key so two concurrent revocations cannot both pass this check.
                admins = list(
                    await db.scalars(
                        select(ApiKey.id)
                        .where(ApiKey.scopes.contains([ADMIN_SCOPE]), ApiKey.revoked_at.is_(None))
                        .where((ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now))
                        .with_for_update()
                    )
                )
                if admins == [key.id]:
                    raise ApiError(409, "last_admin_key", "this is the last active admin key; create another admin key first")
            key.revoked_at = now
            audit.add(
                db,
                audit.KEY_REVOKED,
                conn=request,
                principal=principal,
                tenant_id=key.tenant_id,
                resource_type="api_key",
                resource_id=key.id,
                details={"name": key.name, "prefix": key.prefix},
            )
    return _out(key, tenant)


# -- the caller -----------------------------------------------------------------------


@router.get("/me", response_model=Me)
async def me(principal: AnyKey, services: ServicesDep) -> Me:
    """Who the credentials are: tenant, key, scopes (a token's own, narrower ones) and expiry."""
    async with services.sessionmaker() as db:
        key, tenant = await _load_key(db, str(principal.key_id))
    return Me(
        tenant=TenantOut(id=tenant.id, name=tenant.name),
        key=MeKey(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
        ),
        scopes=sorted(principal.scopes),
        via=principal.via,
    )


@router.post("/tokens", status_code=201, response_model=TokenOut)
async def create_token(body: TokenCreate, request: Request, principal: TokenIssuer, services: ServicesDep) -> TokenOut:
    """A single-use token for a browser (`?token=` on the batch or realtime endpoints),
    valid `ttl_seconds` (at most 15 minutes), with only the scopes its type needs."""
    token = await issue_token(services, principal, body.type, body.ttl_seconds)
    await audit.record(
        services.sessionmaker,
        audit.TOKEN_ISSUED,
        conn=request,
        principal=principal,
        details={"type": body.type, "ttl_seconds": body.ttl_seconds},
    )
    return TokenOut(
        token=token,
        type=body.type,
        scopes=sorted(token_scopes(principal, body.type)),
        expires_at=datetime.now(UTC) + timedelta(seconds=body.ttl_seconds),
    )


# -- the audit log --------------------------------------------------------------------


@router.get("/audit", response_model=AuditList)
async def list_audit(
    principal: Admin,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=32, description="next_cursor of the previous page")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="e.g. key.created, auth.failed")] = None,
    outcome: Literal["success", "failure"] | None = None,
    tenant_id: uuid.UUID | None = None,
    actor_key_id: uuid.UUID | None = None,
    resource_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> AuditList:
    """Audit events, newest first. Page with `cursor`; narrow with the filters."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) >= 2**63:
            raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor value from a previous page")
        query = query.where(AuditEvent.id < int(cursor))
    for column, value in (
        (AuditEvent.action, action),
        (AuditEvent.outcome, outcome),
        (AuditEvent.tenant_id, tenant_id),
        (AuditEvent.actor_key_id, actor_key_id),
        (AuditEvent.resource_id, resource_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    async with services.sessionmaker() as db:
        rows = list(await db.scalars(query))
    page = rows[:limit]
    return AuditList(
        events=[AuditOut.model_validate(e, from_attributes=True) for e in page],
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )
