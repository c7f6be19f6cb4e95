"""Webhook pieces used by both the gateway and the orchestrator.

- URL validation (`shared.urls`, re-exported here): http(s) only, and no
  private/loopback/link-local/multicast/reserved targets unless `allow_private_urls` —
  checked on every resolved address, at registration and again before each delivery.
- Secrets and signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`, via the `standardwebhooks` library) for native deliveries, and
  `ElevenLabs-Signature: t=<ts>,v0=<hex hmac>` for ElevenLabs-style ones.
- The outbox hook `enqueue_deliveries`, called in the transaction that finishes a job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from shared.contracts import ElevenLabsOptions, JobPurpose
from shared.db import Job, JobStatus, WebhookDelivery, WebhookEndpoint

# Re-exported: the gateway and orchestrator import the URL guard from here.
from shared.urls import Target, UrlRefused, UrlUnresolvable, check_url, parse_url, resolve  # noqa: F401

WebhookEvent = Literal["job.completed", "job.failed", "job.cancelled"]
EVENTS: tuple[WebhookEvent, ...] = ("job.completed", "job.failed", "job.cancelled")
SECRET_PREFIX = "whsec_"
NATIVE = "native"
ELEVENLABS = "elevenlabs"
ELEVENLABS_EVENT = "speech_to_text_transcription"


# --- secrets and signatures ---------------------------------------------------------


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def encode_body(payload: dict[str, Any]) -> str:
    """The exact text that is signed and sent; every attempt of a delivery sends the same."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def native_headers(secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """Standard Webhooks headers for `body` (verify with `standardwebhooks.Webhook(secret).verify`)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }


def elevenlabs_signature(secret: str, timestamp: int, body: str) -> str:
    """The `ElevenLabs-Signature` value. The key is the secret string as given to receivers,
    which is what the ElevenLabs SDK's `webhooks.construct_event` uses."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"


# --- payloads -----------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def native_payload(job: Job, event: str, now: datetime) -> dict[str, Any]:
    job_id = str(job.id)
    return {
        "type": event,
        "timestamp": now.isoformat(),
        "data": {
            "id": job_id,
            "status": job.status,
            "model": job.model,
            "language": job.language,
            "speaker_detection": job.speaker_detection,
            "audio_duration": job.audio_duration,
            "audio_filename": job.audio_filename,
            "error": job.error,
            "warnings": list(job.warnings or []),
            "created_at": _iso(job.created_at),
            "completed_at": _iso(job.completed_at),
            # Relative to the gateway's base URL: the orchestrator does not know how clients reach it.
            "transcript_url": f"/v1/audio/transcriptions/{job_id}" if job.status == JobStatus.completed.value else None,
        },
    }


def elevenlabs_envelope(
    *, request_id: str, transcription_id: str, transcription: dict[str, Any], metadata: Any, timestamp: int
) -> dict[str, Any]:
    data: dict[str, Any] = {"request_id": request_id, "transcription_id": transcription_id, "transcription": transcription}
    if metadata is not None:
        data["webhook_metadata"] = metadata
    return {"type": ELEVENLABS_EVENT, "event_timestamp": timestamp, "data": data}


def elevenlabs_options(job: Job) -> ElevenLabsOptions | None:
    """What the ElevenLabs route stored for a `webhook=true` request (None otherwise)."""
    options = job.options().elevenlabs
    return options if options is not None and options.webhook else None


# --- the outbox ---------------------------------------------------------------------


def _plan(job: Job, event: str, endpoints: list[WebhookEndpoint]) -> list[tuple[WebhookEndpoint, str]]:
    """Which endpoints get which format for this event.

    An ElevenLabs `webhook=true` job that completes is delivered in ElevenLabs' format to
    the endpoint named by `webhook_id`, or, without one, to every endpoint subscribed to
    job.completed (ElevenLabs sends to all of a workspace's webhooks). Everything else is a
    native event for the endpoints subscribed to it.
    """
    el = elevenlabs_options(job)
    target = el.webhook_id if el is not None else None
    plan: list[tuple[WebhookEndpoint, str]] = []
    for endpoint in endpoints:
        if el is not None and event == "job.completed" and (str(endpoint.id) == target if target else event in endpoint.events):
            plan.append((endpoint, ELEVENLABS))
        elif event in endpoint.events:
            plan.append((endpoint, NATIVE))
    return plan


async def enqueue_deliveries(db: AsyncSession, job: Job) -> int:
    """Write outbox rows for a job that just finished, in the caller's transaction.

    Idempotent: a job finished twice (the gateway's cancel, then the orchestrator's) gets one
    delivery per endpoint and event. Returns how many rows were new.
    """
    if job.purpose != JobPurpose.TRANSCRIPTION.value:
        return 0  # internal jobs (speaker enrollment) are nobody's events
    event = f"job.{job.status}"
    if event not in EVENTS:
        raise ValueError(f"job {job.id} is {job.status}, not finished")
    endpoints = list(
        await db.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == job.tenant_id, WebhookEndpoint.active.is_(True))
        )
    )
    plan = _plan(job, event, endpoints)
    if not plan:
        return 0
    now = datetime.now(UTC)
    native = native_payload(job, event, now)
    rows = [
        {
            "endpoint_id": endpoint.id,
            "tenant_id": job.tenant_id,
            "job_id": job.id,
            "event": event,
            "format": fmt,
            "status": "pending",
            # ElevenLabs payloads carry the transcript: built by the deliverer, which has the store.
            "payload": native if fmt == NATIVE else None,
            "attempts": 0,
            "next_attempt_at": now,
            "id": uuid.uuid4(),
        }
        for endpoint, fmt in plan
    ]
    result = await db.execute(insert(WebhookDelivery).values(rows).on_conflict_do_nothing().returning(WebhookDelivery.id))
    return len(result.all())


async def find_endpoint(db: AsyncSession, tenant_id: uuid.UUID, endpoint_id: str) -> WebhookEndpoint | None:
    """The tenant's endpoint with this id (for validating an ElevenLabs `webhook_id`), or None."""
    try:
        parsed = uuid.UUID(str(endpoint_id))
    except ValueError:
        return None
    return await db.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == parsed, WebhookEndpoint.tenant_id == tenant_id))
