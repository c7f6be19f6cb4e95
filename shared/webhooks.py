"""Webhook pieces used by both the gateway and the orchestrator.

- URL validation: http(s) only, and no private/loopback/link-local/multicast/reserved
  targets unless `allow_private_urls` — checked on every resolved address, at
  registration and again before each delivery (DNS can change).
- Secrets and signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`, via the `standardwebhooks` library) for native deliveries, and
  `ElevenLabs-Signature: t=<ts>,v0=<hex hmac>` for ElevenLabs-style ones.
- The outbox hook `enqueue_deliveries`, called in the transaction that finishes a job.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from shared.db import Job, JobStatus, WebhookDelivery, WebhookEndpoint

EVENTS = ("job.completed", "job.failed", "job.cancelled")
SECRET_PREFIX = "whsec_"
NATIVE = "native"
ELEVENLABS = "elevenlabs"
ELEVENLABS_EVENT = "speech_to_text_transcription"
DNS_TIMEOUT_S = 5.0  # registration resolves in the request path: never hang it on slow DNS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- URL validation -----------------------------------------------------------------


class UrlRefused(ValueError):
    """The URL is not one we deliver to. The message says why, for users."""


class UrlUnresolvable(ValueError):
    """The hostname did not resolve (possibly a transient DNS failure)."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address it resolved to; deliveries connect to that address
    so a DNS answer that changes between check and connect cannot redirect them."""

    url: httpx.URL
    address: IPAddress

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))


def _refused_reason(address: IPAddress) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for attribute in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, attribute):
            return attribute.removeprefix("is_").replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, shared carrier-grade NAT space
        return "non-global"
    return None


def parse_url(url: str) -> httpx.URL:
    """Syntax only: an absolute http(s) URL with a host and no credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused(f"the URL scheme must be http or https, not {parsed.scheme or 'missing'!r}")
    if not parsed.host:
        raise UrlRefused("the URL has no host")
    if parsed.userinfo:
        raise UrlRefused("the URL must not contain credentials; authenticate with the signature instead")
    return parsed


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), DNS_TIMEOUT_S
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlUnresolvable(f"the host {host!r} does not resolve: {exc}") from exc
    except TimeoutError as exc:
        raise UrlUnresolvable(f"resolving the host {host!r} timed out after {DNS_TIMEOUT_S:.0f} s") from exc
    # Drop an IPv6 zone id ("fe80::1%eth0"); the address itself is what is checked.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UrlUnresolvable(f"the host {host!r} has no addresses")
    return list(dict.fromkeys(addresses))


async def check_url(url: str, *, allow_private: bool) -> Target:
    """The URL's target if we may deliver to it; raises UrlRefused or UrlUnresolvable."""
    parsed = parse_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(parsed.host, port)
    if not allow_private:
        for address in addresses:  # every address: the client could connect to any of them
            reason = _refused_reason(address)
            if reason is not None:
                raise UrlRefused(
                    f"{parsed.host} resolves to {address}, a {reason} address; webhook URLs must be public "
                    "(set DALSTON_ALLOW_PRIVATE_URLS=true to allow private targets)"
                )
    return Target(parsed, addresses[0])


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


def elevenlabs_options(job: Job) -> dict[str, Any]:
    """What the ElevenLabs route stored for a `webhook=true` request ({} otherwise)."""
    options = (job.parameters or {}).get("elevenlabs") or {}
    return options if options.get("webhook") else {}


# --- the outbox ---------------------------------------------------------------------


def _plan(job: Job, event: str, endpoints: list[WebhookEndpoint]) -> list[tuple[WebhookEndpoint, str]]:
    """Which endpoints get which format for this event.

    An ElevenLabs `webhook=true` job that completes is delivered in ElevenLabs' format to
    the endpoint named by `webhook_id`, or, without one, to every endpoint subscribed to
    job.completed (ElevenLabs sends to all of a workspace's webhooks). Everything else is a
    native event for the endpoints subscribed to it.
    """
    el = elevenlabs_options(job)
    target = str(el["webhook_id"]) if el.get("webhook_id") else None
    plan: list[tuple[WebhookEndpoint, str]] = []
    for endpoint in endpoints:
        if el and event == "job.completed" and (str(endpoint.id) == target if target else event in endpoint.events):
            plan.append((endpoint, ELEVENLABS))
        elif event in endpoint.events:
            plan.append((endpoint, NATIVE))
    return plan


async def enqueue_deliveries(db: AsyncSession, job: Job) -> int:
    """Write outbox rows for a job that just finished, in the caller's transaction.

    Idempotent: a job finished twice (the gateway's cancel, then the orchestrator's) gets one
    delivery per endpoint and event. Returns how many rows were new.
    """
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
    now = datetime.now(timezone.utc)
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
    result = await db.execute(
        insert(WebhookDelivery).values(rows).on_conflict_do_nothing().returning(WebhookDelivery.id)
    )
    return len(result.all())


async def find_endpoint(db: AsyncSession, tenant_id: uuid.UUID, endpoint_id: str) -> WebhookEndpoint | None:
    """The tenant's endpoint with this id (for validating an ElevenLabs `webhook_id`), or None."""
    try:
        parsed = uuid.UUID(str(endpoint_id))
    except ValueError:
        return None
    return await db.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == parsed, WebhookEndpoint.tenant_id == tenant_id)
    )
