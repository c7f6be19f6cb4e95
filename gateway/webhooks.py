"""Webhook endpoint registry: /v1/webhooks.

Endpoints belong to the caller's tenant; other tenants' ids answer 404. The signing
secret is returned only when an endpoint is created and when its secret is rotated.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import audit
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import ServicesDep
from shared.db import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.webhooks import EVENTS, UrlRefused, UrlUnresolvable, WebhookEvent, check_url, generate_secret

log = structlog.get_logger("gateway.webhooks")

MAX_ENDPOINTS_PER_TENANT = 100
_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404)}

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=_ERRORS)
Admin = Annotated[Principal, Depends(require_scope("webhooks"))]

Event = WebhookEvent


# --- request and response models ----------------------------------------------------


def _unique_events(events: list[str]) -> list[str]:
    if not events:
        raise ValueError("at least one event is required")
    return list(dict.fromkeys(events))


Events = Annotated[list[Event], AfterValidator(_unique_events)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http(s) URL that receives POSTed events")
    events: Events = Field(default_factory=lambda: list(EVENTS))
    description: str | None = Field(default=None, max_length=500)
    active: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: Events | None = None
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None  # set when deliveries turned the endpoint off (410 Gone)
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str  # whsec_<base64>: shown once; verify signatures with it


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID  # also the `webhook-id` header, as msg_<hex>
    job_id: uuid.UUID | None
    event: str
    format: str  # native | elevenlabs
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime | None  # while pending
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    history: list[AttemptOut]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        active=endpoint.active,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**_out(endpoint).model_dump(), secret=endpoint.secret)


# --- helpers ------------------------------------------------------------------------


async def _checked_url(url: str, allow_private: bool) -> str:
    try:
        await check_url(url, allow_private=allow_private)
    except (UrlRefused, UrlUnresolvable) as exc:
        raise ApiError(400, "invalid_url", str(exc)) from exc
    return url


async def _load(db: AsyncSession, principal: Principal, webhook_id: str, *, for_update: bool = False) -> WebhookEndpoint:
    """The caller's endpoint, or 404: unknown, malformed and other tenants' ids look the same."""
    try:
        parsed = uuid.UUID(webhook_id)
    except ValueError:
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id!r}") from None
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == parsed, WebhookEndpoint.tenant_id == principal.tenant_id)
    endpoint = await db.scalar(query.with_for_update() if for_update else query)
    if endpoint is None:
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id!r}")
    return endpoint


# --- routes -------------------------------------------------------------------------


@router.post("", status_code=201, response_model=WebhookWithSecret)
async def create_webhook(body: WebhookCreate, request: Request, principal: Admin, services: ServicesDep) -> WebhookWithSecret:
    """Register an endpoint. The response carries its signing secret: store it now."""
    url = await _checked_url(body.url, services.settings.allow_private_urls)
    async with services.sessionmaker() as db, db.begin():
        count = await db.scalar(
            select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.tenant_id == principal.tenant_id)
        )
        assert count is not None  # COUNT(*) always returns a row
        if count >= MAX_ENDPOINTS_PER_TENANT:
            raise ApiError(400, "too_many_webhooks", f"a tenant may register at most {MAX_ENDPOINTS_PER_TENANT} webhooks")
        endpoint = WebhookEndpoint(
            tenant_id=principal.tenant_id,
            url=url,
            events=body.events,
            description=body.description,
            active=body.active,
            secret=generate_secret(),
        )
        db.add(endpoint)
        await db.flush()
        await db.refresh(endpoint)
        audit.add(db, audit.WEBHOOK_CREATED, conn=request, principal=principal, resource_type="webhook", resource_id=endpoint.id)
    log.info("webhook_created", webhook_id=str(endpoint.id))
    return _with_secret(endpoint)


@router.get("", response_model=WebhookList)
async def list_webhooks(principal: Admin, services: ServicesDep) -> WebhookList:
    async with services.sessionmaker() as db:
        endpoints = await db.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == principal.tenant_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return WebhookList(webhooks=[_out(e) for e in endpoints])


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: str, principal: Admin, services: ServicesDep) -> WebhookOut:
    async with services.sessionmaker() as db:
        return _out(await _load(db, principal, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, request: Request, principal: Admin, services: ServicesDep
) -> WebhookOut:
    """Change the URL, events, description or active flag. Re-activating clears disabled_reason.
    Audited with the fields sent and the URL before and after: a changed URL redirects events."""
    fields = body.model_fields_set
    for name in ("url", "events", "active"):
        if name in fields and getattr(body, name) is None:
            raise ApiError(400, "invalid_parameter", f"{name} cannot be null")
    url = await _checked_url(body.url, services.settings.allow_private_urls) if body.url is not None else None
    async with services.sessionmaker() as db, db.begin():
        endpoint = await _load(db, principal, webhook_id, for_update=True)
        previous_url = endpoint.url
        if url is not None:
            endpoint.url = url
        if body.events is not None:
            endpoint.events = list(body.events)
        if "description" in fields:
            endpoint.description = body.description
        if body.active is not None:
            endpoint.active = body.active
            if body.active:
                endpoint.disabled_reason = None
        endpoint.updated_at = datetime.now(UTC)
        details: dict[str, Any] = {"fields": sorted(fields)}
        if url is not None and url != previous_url:
            details |= {"previous_url": previous_url, "url": url}
        audit.add(
            db,
            audit.WEBHOOK_UPDATED,
            conn=request,
            principal=principal,
            resource_type="webhook",
            resource_id=endpoint.id,
            details=details,
        )
    return _out(endpoint)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(webhook_id: str, request: Request, principal: Admin, services: ServicesDep) -> Response:
    """Remove the endpoint with its pending deliveries and history."""
    async with services.sessionmaker() as db, db.begin():
        endpoint = await _load(db, principal, webhook_id, for_update=True)
        await db.delete(endpoint)
        audit.add(db, audit.WEBHOOK_DELETED, conn=request, principal=principal, resource_type="webhook", resource_id=endpoint.id)
    log.info("webhook_deleted", webhook_id=webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookWithSecret)
async def rotate_secret(webhook_id: str, request: Request, principal: Admin, services: ServicesDep) -> WebhookWithSecret:
    """Replace the signing secret. Attempts from now on, retries included, use the new one."""
    async with services.sessionmaker() as db, db.begin():
        endpoint = await _load(db, principal, webhook_id, for_update=True)
        endpoint.secret = generate_secret()
        endpoint.updated_at = datetime.now(UTC)
        audit.add(
            db, audit.WEBHOOK_SECRET_ROTATED, conn=request, principal=principal, resource_type="webhook", resource_id=endpoint.id
        )
    log.info("webhook_secret_rotated", webhook_id=webhook_id)
    return _with_secret(endpoint)


async def _deliveries_out(db: AsyncSession, deliveries: list[WebhookDelivery]) -> list[DeliveryOut]:
    """The deliveries with their attempts, in the order given."""
    attempts: dict[uuid.UUID, list[AttemptOut]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = await db.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        )
        for a in rows:
            attempts[a.delivery_id].append(
                AttemptOut(
                    attempt=a.attempt,
                    started_at=a.started_at,
                    duration_ms=a.duration_ms,
                    status_code=a.status_code,
                    error=a.error,
                    response_body=a.response_body,
                )
            )
    return [
        DeliveryOut(
            id=d.id,
            job_id=d.job_id,
            event=d.event,
            format=d.format,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            finished_at=d.finished_at,
            history=attempts[d.id],
        )
        for d in deliveries
    ]


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    webhook_id: str,
    principal: Admin,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    job_id: Annotated[uuid.UUID | None, Query()] = None,
) -> DeliveryList:
    """The endpoint's deliveries, newest first, each with its attempts."""
    async with services.sessionmaker() as db:
        endpoint = await _load(db, principal, webhook_id)
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if job_id is not None:
            query = query.where(WebhookDelivery.job_id == job_id)
        deliveries = list(
            await db.scalars(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit))
        )
        return DeliveryList(deliveries=await _deliveries_out(db, deliveries))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses={409: {"model": ErrorResponse}},
)
async def redeliver(webhook_id: str, delivery_id: str, request: Request, principal: Admin, services: ServicesDep) -> DeliveryOut:
    """Send a finished delivery (delivered or failed) again: it goes back to `pending` and the
    delivery worker makes a new attempt at once, signed afresh with the endpoint's current
    secret, appended to the same history.

    The same delivery, not a copy: Standard Webhooks says a message that is sent again keeps
    its `webhook-id`, so receivers that already processed it can deduplicate, and the id is
    the delivery's (`msg_<id>`). Its job link and frozen payload stay as they were (a copy
    could not keep the job link: a job has one delivery per endpoint and event). Attempts
    count against `webhook_max_attempts` in all, so one that used them up gets exactly this
    one attempt, and one that had attempts left is retried on failure as before.

    404 for an unknown delivery or one of another endpoint or tenant; 409 while the
    endpoint is disabled (nothing would be sent) or the delivery is still pending (it is
    already queued, and may be in flight).
    """
    try:
        parsed = uuid.UUID(delivery_id)
    except ValueError:
        raise ApiError(404, "delivery_not_found", f"no delivery {delivery_id!r}") from None
    async with services.sessionmaker() as db, db.begin():
        endpoint = await _load(db, principal, webhook_id, for_update=True)
        delivery = await db.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == parsed, WebhookDelivery.endpoint_id == endpoint.id)
            .with_for_update()
        )
        if delivery is None:
            raise ApiError(404, "delivery_not_found", f"no delivery {delivery_id!r} for this webhook")
        if not endpoint.active:
            raise ApiError(
                409, "webhook_disabled", "the endpoint is disabled: enable it first, then redeliver (nothing is sent to it now)"
            )
        if delivery.status == "pending":
            raise ApiError(
                409, "delivery_pending", "the delivery is still pending: it will be attempted again on its own schedule"
            )
        previous = delivery.status
        delivery.status = "pending"
        delivery.next_attempt_at = datetime.now(UTC)
        delivery.finished_at = None
        audit.add(
            db,
            audit.WEBHOOK_REDELIVERED,
            conn=request,
            principal=principal,
            resource_type="webhook",
            resource_id=endpoint.id,
            details={"delivery_id": str(delivery.id), "event": delivery.event, "previous_status": previous},
        )
        await db.flush()
        [out] = await _deliveries_out(db, [delivery])
    log.info("webhook_redelivery_queued", webhook_id=webhook_id, delivery_id=delivery_id, previous_status=previous)
    return out
