"""Webhook secrets, signatures (checked with the receivers' own verifiers), backoff and routing."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime

import pytest
from elevenlabs.client import ElevenLabs
from elevenlabs.errors import BadRequestError
from standardwebhooks import Webhook, WebhookVerificationError

from orchestrator.webhooks import backoff_s
from shared.db import Job, WebhookEndpoint
from shared.settings import Settings
from shared.webhooks import (
    ELEVENLABS,
    EVENTS,
    NATIVE,
    _plan,
    elevenlabs_envelope,
    elevenlabs_signature,
    encode_body,
    generate_secret,
    native_headers,
)


def test_secret_is_standard_webhooks_format() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret


def test_native_signature_verifies_with_standardwebhooks() -> None:
    secret = generate_secret()
    body = encode_body({"type": "job.completed", "data": {"id": "abc", "text": "héllo"}})
    headers = native_headers(secret, "msg_123", datetime.now(UTC), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(body.encode(), headers) == {"type": "job.completed", "data": {"id": "abc", "text": "héllo"}}

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("abc", "abd"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_other"})


def test_elevenlabs_signature_verifies_with_the_sdk() -> None:
    secret = generate_secret()
    payload = elevenlabs_envelope(
        request_id="req", transcription_id="tid", transcription={"text": "hi"}, metadata={"k": 1}, timestamp=int(time.time())
    )
    body = encode_body(payload)
    header = elevenlabs_signature(secret, int(time.time()), body)
    assert header.startswith("t=") and ",v0=" in header

    client = ElevenLabs(api_key="unused")
    event = client.webhooks.construct_event(rawBody=body, sig_header=header, secret=secret)
    assert event["type"] == "speech_to_text_transcription"
    assert event["data"] == {
        "request_id": "req",
        "transcription_id": "tid",
        "transcription": {"text": "hi"},
        "webhook_metadata": {"k": 1},
    }

    with pytest.raises(BadRequestError):
        client.webhooks.construct_event(rawBody=body.replace("hi", "ho"), sig_header=header, secret=secret)
    with pytest.raises(BadRequestError):
        client.webhooks.construct_event(rawBody=body, sig_header=header, secret=generate_secret())
    stale = elevenlabs_signature(secret, int(time.time()) - 3600, body)
    with pytest.raises(BadRequestError):
        client.webhooks.construct_event(rawBody=body, sig_header=stale, secret=secret)


def test_envelope_omits_absent_metadata() -> None:
    payload = elevenlabs_envelope(request_id="r", transcription_id="t", transcription={}, metadata=None, timestamp=1)
    assert payload == {
        "type": "speech_to_text_transcription",
        "event_timestamp": 1,
        "data": {"request_id": "r", "transcription_id": "t", "transcription": {}},
    }


def test_backoff_follows_the_schedule_with_jitter() -> None:
    settings = Settings(webhook_backoff_s=[5.0, 30.0, 120.0])
    for attempts, base in [(1, 5.0), (2, 30.0), (3, 120.0), (4, 120.0), (9, 120.0)]:
        delays = [backoff_s(settings, attempts) for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(set(delays)) > 1  # jittered


def _endpoint(events: tuple[str, ...] = EVENTS) -> WebhookEndpoint:
    return WebhookEndpoint(id=uuid.uuid4(), events=list(events), active=True)


def test_native_jobs_go_to_subscribed_endpoints() -> None:
    all_events, failures_only = _endpoint(), _endpoint(("job.failed",))
    job = Job(id=uuid.uuid4(), status="completed", parameters={})
    assert _plan(job, "job.completed", [all_events, failures_only]) == [(all_events, NATIVE)]
    assert _plan(job, "job.failed", [all_events, failures_only]) == [(all_events, NATIVE), (failures_only, NATIVE)]


def test_elevenlabs_webhook_jobs_get_the_elevenlabs_format() -> None:
    first, second, failures_only = _endpoint(), _endpoint(), _endpoint(("job.failed",))
    endpoints = [first, second, failures_only]
    # No webhook_id: every endpoint subscribed to completions, as ElevenLabs sends to all webhooks.
    job = Job(id=uuid.uuid4(), status="completed", parameters={"elevenlabs": {"webhook": True}})
    assert _plan(job, "job.completed", endpoints) == [(first, ELEVENLABS), (second, ELEVENLABS)]
    # webhook_id picks one endpoint, even one not subscribed to completions; the rest get native events.
    job.parameters = {"elevenlabs": {"webhook": True, "webhook_id": str(failures_only.id)}}
    assert _plan(job, "job.completed", endpoints) == [(first, NATIVE), (second, NATIVE), (failures_only, ELEVENLABS)]
    # Failures have no transcription: native events.
    assert _plan(job, "job.failed", endpoints) == [(first, NATIVE), (second, NATIVE), (failures_only, NATIVE)]
    # webhook=false: native.
    job.parameters = {"elevenlabs": {"webhook": False}}
    assert _plan(job, "job.completed", endpoints) == [(first, NATIVE), (second, NATIVE)]
