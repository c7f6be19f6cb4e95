"""Webhook delivery: drains the outbox that job transitions fill.

A delivery is claimed with `FOR UPDATE SKIP LOCKED` and leased (its next_attempt_at moves
past the HTTP timeout), so several orchestrators share the work and a crashed one's
deliveries come due again. The POST runs outside any transaction. Each attempt is recorded;
non-2xx answers and network errors are retried with jittered exponential backoff until
`webhook_max_attempts`; 410 Gone disables the endpoint. Delivery is at least once:
receivers deduplicate on `webhook-id` (native) or `transcription_id` (ElevenLabs).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator import metrics
from shared.contracts import ElevenLabsOptions
from shared.db import Job, JobStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.formats.elevenlabs import to_response
from shared.outages import unavailable
from shared.settings import Settings
from shared.storage import ObjectNotFound, ObjectStore
from shared.transcript import Transcript
from shared.webhooks import (
    ELEVENLABS,
    UrlRefused,
    UrlUnresolvable,
    check_url,
    elevenlabs_envelope,
    elevenlabs_options,
    elevenlabs_signature,
    encode_body,
    native_headers,
)

log = structlog.get_logger("orchestrator.webhooks")

BATCH = 16
LEASE_MARGIN_S = 30.0
RESPONSE_BODY_CHARS = 500
USER_AGENT = "Dalston-Webhooks/1"


class PermanentFailure(Exception):
    """The delivery can never succeed (refused URL, job deleted before its payload was built)."""


def backoff_s(settings: Settings, attempts: int) -> float:
    """Delay after the `attempts`-th failed attempt, jittered by +-20% so retries spread out."""
    schedule = settings.webhook_backoff_s or [5.0]
    base = schedule[min(attempts, len(schedule)) - 1]
    return base * random.uniform(0.8, 1.2)


@dataclass
class Outcome:
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: float
    started_at: datetime
    permanent: bool = False  # no retry, whatever the attempt count


@dataclass
class Prepared:
    delivery_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    format: str
    body: str


class WebhookDeliverer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: ObjectStore,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.store = store
        self.settings = settings
        # No redirects: a 3xx must not lead the request to a target that was never checked.
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_s, follow_redirects=False, headers={"user-agent": USER_AGENT}
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("webhook_deliverer_started")
        while not stop.is_set():
            try:
                delivered = await self.deliver_due()
            except Exception as exc:
                if unavailable(exc) is None:
                    log.exception("webhook_delivery_pass_failed")
                else:  # PostgreSQL is down: retried every poll until it is back
                    log.warning("webhook_delivery_pass_deferred", error=f"{type(exc).__name__}: {exc}")
                delivered = 0
            if not delivered:  # after a busy pass, look again at once: more may be due
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.webhook_poll_interval_s)
                except TimeoutError:
                    pass
        log.info("webhook_deliverer_stopped")

    async def deliver_due(self) -> int:
        """Attempt every due delivery (up to a batch). Returns how many were attempted."""
        claimed = await self._claim()
        results = await asyncio.gather(*(self._deliver(delivery_id) for delivery_id in claimed), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):  # e.g. the database went away mid-delivery: leased, retried later
                log.error("webhook_delivery_failed", error=repr(result))
        return len(claimed)

    # --- steps --------------------------------------------------------------------

    async def _claim(self) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.webhook_timeout_s + LEASE_MARGIN_S)
        async with self.sessionmaker() as db, db.begin():
            rows = list(
                await db.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                row.next_attempt_at = now + lease
        return [row.id for row in rows]

    async def _deliver(self, delivery_id: uuid.UUID) -> None:
        with structlog.contextvars.bound_contextvars(delivery_id=str(delivery_id)):
            now = datetime.now(UTC)
            try:
                prepared = await self._prepare(delivery_id)
            except PermanentFailure as exc:
                await self._record(delivery_id, Outcome(None, str(exc), None, 0.0, now, permanent=True))
                return
            except Exception as exc:  # a bug or bad stored data: counted as an attempt, so it cannot loop forever
                log.exception("webhook_payload_failed")
                await self._record(delivery_id, Outcome(None, f"could not build the payload: {exc!r}", None, 0.0, now))
                return
            if prepared is None:
                return
            outcome = await self._post(prepared)
            await self._record(delivery_id, outcome)

    async def _prepare(self, delivery_id: uuid.UUID) -> Prepared | None:
        """Load the delivery and freeze its payload on the first attempt."""
        async with self.sessionmaker() as db, db.begin():
            delivery = await db.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None or delivery.status != "pending":
                return None
            endpoint = await db.get(WebhookEndpoint, delivery.endpoint_id)
            if endpoint is None or not endpoint.active:
                raise PermanentFailure("the endpoint was disabled before delivery")
            if delivery.payload is None:
                delivery.payload = await self._build_payload(db, delivery)
            return Prepared(
                delivery_id=delivery.id,
                attempt=delivery.attempts + 1,
                url=endpoint.url,
                secret=endpoint.secret,
                format=delivery.format,
                body=encode_body(delivery.payload),
            )

    async def _build_payload(self, db: AsyncSession, delivery: WebhookDelivery) -> dict:
        if delivery.format != ELEVENLABS:
            raise PermanentFailure(f"{delivery.format} delivery without a payload")
        job = await db.get(Job, delivery.job_id) if delivery.job_id else None
        if job is None:
            raise PermanentFailure("the job was deleted before its webhook was delivered")
        if job.status != JobStatus.completed.value or not job.transcript_key:
            raise PermanentFailure(f"the job is {job.status}; only completed jobs have a transcription to send")
        try:
            raw = await asyncio.to_thread(self.store.get_bytes, job.transcript_key)
        except ObjectNotFound as exc:
            raise PermanentFailure("the job's transcript is gone from storage") from exc
        transcript = Transcript.model_validate_json(raw)
        options = elevenlabs_options(job) or ElevenLabsOptions()
        return elevenlabs_envelope(
            request_id=options.request_id or str(job.id),
            transcription_id=str(job.id),
            transcription=to_response(transcript, options.request_options, transcription_id=str(job.id)),
            metadata=options.webhook_metadata,
            timestamp=int(time.time()),
        )

    async def _post(self, prepared: Prepared) -> Outcome:
        started = datetime.now(UTC)
        clock = time.perf_counter()

        def outcome(status: int | None, error: str | None, body: str | None = None, *, permanent: bool = False) -> Outcome:
            return Outcome(status, error, body, round((time.perf_counter() - clock) * 1000, 1), started, permanent)

        try:
            target = await check_url(prepared.url, allow_private=self.settings.allow_private_urls)
        except UrlRefused as exc:
            log.warning("webhook_url_refused", url=prepared.url, reason=str(exc))
            return outcome(None, f"refused: {exc}", permanent=True)
        except UrlUnresolvable as exc:
            return outcome(None, str(exc))

        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "host": target.url.netloc.decode("ascii")}
        if prepared.format == ELEVENLABS:
            headers["ElevenLabs-Signature"] = elevenlabs_signature(prepared.secret, int(now.timestamp()), prepared.body)
        else:
            headers |= native_headers(prepared.secret, f"msg_{prepared.delivery_id.hex}", now, prepared.body)
        # Connect to the address that was checked; TLS still verifies the certificate for the host name.
        extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
        request = self.client.build_request(
            "POST", target.pinned_url(), content=prepared.body.encode(), headers=headers, extensions=extensions
        )
        try:
            # One deadline for the whole exchange: a receiver trickling bytes cannot hold us.
            status, head = await asyncio.wait_for(self._send(request), self.settings.webhook_timeout_s)
        except TimeoutError:
            return outcome(None, f"timed out after {self.settings.webhook_timeout_s:g} s")
        except httpx.HTTPError as exc:
            return outcome(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return outcome(status, error, head.decode("utf-8", "replace")[:RESPONSE_BODY_CHARS] or None)

    async def _send(self, request: httpx.Request) -> tuple[int, bytes]:
        """The status and at most the first RESPONSE_BODY_CHARS bytes of the answer (the rest is not read)."""
        response = await self.client.send(request, stream=True)
        try:
            head = b""
            async for part in response.aiter_bytes():
                head += part
                if len(head) >= RESPONSE_BODY_CHARS:
                    break
            return response.status_code, head
        finally:
            await response.aclose()

    async def _record(self, delivery_id: uuid.UUID, outcome: Outcome) -> None:
        async with self.sessionmaker() as db, db.begin():
            delivery = await db.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None or delivery.status != "pending":
                return
            delivery.attempts += 1
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            db.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempt=delivery.attempts,
                    started_at=outcome.started_at,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    response_body=outcome.response_body,
                )
            )
            now = datetime.now(UTC)
            code = outcome.status_code
            if code is not None and 200 <= code < 300:
                delivery.status = "delivered"
                delivery.finished_at = now
            elif code == 410:
                delivery.status = "failed"
                delivery.finished_at = now
                endpoint = await db.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
                if endpoint is not None and endpoint.active:
                    endpoint.active = False
                    endpoint.disabled_reason = "the receiver answered 410 Gone"
                    endpoint.updated_at = now
                    log.warning("webhook_endpoint_disabled_gone", endpoint_id=str(endpoint.id))
            elif outcome.permanent or delivery.attempts >= self.settings.webhook_max_attempts:
                delivery.status = "failed"
                delivery.finished_at = now
            else:
                delivery.next_attempt_at = now + timedelta(seconds=backoff_s(self.settings, delivery.attempts))
            metrics.WEBHOOK_ATTEMPTS.labels("retrying" if delivery.status == "pending" else delivery.status).inc()
            log.info(
                "webhook_attempt",
                attempt=delivery.attempts,
                status_code=code,
                error=outcome.error,
                result=delivery.status,
                duration_ms=outcome.duration_ms,
            )
