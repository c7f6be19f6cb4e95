"""Webhooks against real PostgreSQL and Redis, delivered over HTTP to a local receiver.

Jobs are finished through the orchestrator's own transaction (`Orchestrator.transact`) and
the gateway's cancel route, so the outbox hook under test is the one production runs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from elevenlabs.client import ElevenLabs
from sqlalchemy import select, update
from standardwebhooks import Webhook
from support import Receiver, free_port, sample, scrape

from gateway.app import create_app
from gateway.services import Services
from orchestrator import transitions
from orchestrator.service import Orchestrator
from orchestrator.webhooks import WebhookDeliverer
from shared.bootstrap import generate_key, hash_key
from shared.db import ApiKey, AuditEvent, Job, JobStatus, Task, Tenant, WebhookDelivery, WebhookEndpoint
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word
from shared.webhooks import enqueue_deliveries

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0
URL = "/v1/webhooks"


# --- a local receiver ---------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


# --- app, keys, deliverer -----------------------------------------------------------


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        storage_backend="fs",
        allow_private_urls=True,  # the receiver is on loopback
        webhook_backoff_s=[0.3, 0.6],
        webhook_poll_interval_s=0.1,
        webhook_max_attempts=10,
        webhook_timeout_s=5.0,
    )


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            yield client, app.state.services


async def add_key(services: Services, scopes: list[str], tenant: str | None = None) -> tuple[str, uuid.UUID]:
    key = generate_key()
    async with services.sessionmaker() as db, db.begin():
        row = Tenant(name=tenant or f"webhooks-{uuid.uuid4().hex[:8]}")
        db.add(row)
        await db.flush()
        db.add(ApiKey(tenant_id=row.id, name="test", prefix=key[:10], key_hash=hash_key(key), scopes=scopes))
    return key, row.id


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    tenant_id: uuid.UUID
    headers: dict[str, str]

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers={**self.headers, **(headers or {})}, **kwargs)

    async def register(self, url: str, **fields: Any) -> dict:
        response = await self.request("POST", URL, json={"url": url, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    async def deliveries(self, webhook_id: str) -> list[dict]:
        response = await self.request("GET", f"{URL}/{webhook_id}/deliveries")
        assert response.status_code == 200, response.text
        return response.json()["deliveries"]


@pytest.fixture
async def api(gateway: tuple[httpx.AsyncClient, Services]) -> AsyncIterator[Api]:
    client, services = gateway
    key, tenant_id = await add_key(services, ["webhooks", "jobs:read", "jobs:write"])
    yield Api(client, services, tenant_id, {"Authorization": f"Bearer {key}"})
    # Deliverers claim every due row in the database: leave none pending for the next test's.
    async with services.sessionmaker() as db, db.begin():
        await db.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending").values(status="failed"))


@pytest.fixture
async def start_deliverer(api: Api, settings: Settings) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    running: list[tuple[asyncio.Event, asyncio.Task, WebhookDeliverer]] = []

    async def start(**overrides: Any) -> None:
        deliverer = WebhookDeliverer(api.services.sessionmaker, api.services.store, settings.model_copy(update=overrides))
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(deliverer.run(stop)), deliverer))

    yield start
    for stop, task, deliverer in running:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)
        await deliverer.aclose()


# --- jobs ---------------------------------------------------------------------------

TRANSCRIPT = Transcript(
    text=" hello webhook world",
    language="en",
    language_probability=0.97,
    duration=2.5,
    segments=[Segment(id=0, start=0.0, end=2.5, text=" hello webhook world")],
    words=[
        Word(text="hello", start=0.1, end=0.5, probability=0.9),
        Word(text="webhook", start=0.6, end=1.2, probability=0.8),
        Word(text="world", start=1.3, end=1.9, probability=0.95),
    ],
    model="tiny.en",
)


async def finish_job(api: Api, status: JobStatus, *, parameters: dict | None = None) -> str:
    """A job of the api's tenant, finished by the orchestrator's transaction (hook included)."""
    svc = api.services
    async with svc.sessionmaker() as db, db.begin():
        job = Job(
            tenant_id=api.tenant_id,
            status=JobStatus.running.value,
            model="tiny.en",
            language="en",
            speaker_detection="none",
            parameters=parameters or {},
            audio_key="uploads/x.wav",
            audio_filename="x.wav",
            audio_bytes=80_000,
            audio_duration=2.5,
            audio_channels=1,
            audio_sample_rate=16_000,
        )
        db.add(job)
        await db.flush()
        output_key = f"jobs/{job.id}/tasks/merge/transcript.json"
        svc.store.put_bytes(output_key, TRANSCRIPT.model_dump_json().encode())
        db.add(Task(job_id=job.id, name="merge", stage="merge", engine_id="merge", depends_on=[], config={},
                    required=True, status="completed", attempt=0, max_retries=0, output_key=output_key))  # fmt: skip

    async def step(db, job, tasks):
        return transitions.finish(job, tasks, status, error="transcribe failed: boom" if status == JobStatus.failed else None)

    orchestrator = Orchestrator(svc.sessionmaker, svc.redis, svc.settings)
    await orchestrator.transact(job.id, step)
    return str(job.id)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` (plain or async) until it returns something truthy."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


# --- the registry -------------------------------------------------------------------


async def test_crud_and_secret_rotation(api: Api) -> None:
    created = await api.register("http://127.0.0.1:9/hook", description="ci", events=["job.completed", "job.completed"])
    webhook_id = created["id"]
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["job.completed"] and created["active"] is True and created["description"] == "ci"

    got = (await api.request("GET", f"{URL}/{webhook_id}")).json()
    assert "secret" not in got and got["url"] == "http://127.0.0.1:9/hook"
    listed = (await api.request("GET", URL)).json()["webhooks"]
    assert [w["id"] for w in listed] == [webhook_id] and "secret" not in listed[0]

    default = await api.register("http://127.0.0.1:9/other")
    assert default["events"] == ["job.completed", "job.failed", "job.cancelled"]

    patched = await api.request(
        "PATCH", f"{URL}/{webhook_id}", json={"events": ["job.failed"], "active": False, "description": None}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"] == ["job.failed"] and patched.json()["active"] is False
    assert patched.json()["description"] is None and "secret" not in patched.json()
    assert patched.json()["url"] == "http://127.0.0.1:9/hook"  # untouched

    rotated = await api.request("POST", f"{URL}/{webhook_id}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    async with api.services.sessionmaker() as db:
        stored = await db.get(WebhookEndpoint, uuid.UUID(webhook_id))
    assert stored.secret == rotated.json()["secret"]

    assert (await api.request("DELETE", f"{URL}/{webhook_id}")).status_code == 204
    assert_error(await api.request("GET", f"{URL}/{webhook_id}"), 404, "webhook_not_found")
    assert_error(await api.request("DELETE", f"{URL}/{webhook_id}"), 404, "webhook_not_found")
    assert_error(await api.request("GET", f"{URL}/not-a-uuid"), 404, "webhook_not_found")


async def test_invalid_registrations_get_clear_400s(api: Api) -> None:
    cases = [
        ({"url": "ftp://example.com/x"}, "invalid_url"),
        ({"url": "not a url"}, "invalid_url"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "invalid_url"),
        ({"url": "http://no-such-host.invalid/x"}, "invalid_url"),
        ({"url": "http://127.0.0.1/x", "events": ["job.exploded"]}, "invalid_parameter"),
        ({"url": "http://127.0.0.1/x", "events": []}, "invalid_parameter"),
        ({"url": "http://127.0.0.1/x", "secret": "mine"}, "invalid_parameter"),
        ({"events": ["job.failed"]}, "invalid_parameter"),
    ]
    for body, code in cases:
        assert_error(await api.request("POST", URL, json=body), 400, code)
    assert_error(
        await api.request("POST", URL, content=b"{nope", headers={"content-type": "application/json"}), 400, "invalid_parameter"
    )

    created = await api.register("http://127.0.0.1:9/hook")
    for body in ({"url": None}, {"events": None}, {"active": None}, {"url": "gopher://x"}, {"bogus": 1}):
        response = await api.request("PATCH", f"{URL}/{created['id']}", json=body)
        assert response.status_code == 400, (body, response.text)
    assert_error(await api.request("GET", f"{URL}/{created['id']}/deliveries", params={"limit": 0}), 400, "invalid_parameter")
    assert_error(
        await api.request("GET", f"{URL}/{created['id']}/deliveries", params={"status": "lost"}), 400, "invalid_parameter"
    )


async def test_private_urls_are_refused_unless_allowed(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"allow_private_urls": False}))
    async with app.router.lifespan_context(app):
        key, _ = await add_key(app.state.services, ["webhooks"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            headers = {"Authorization": f"Bearer {key}"}
            for url in (
                "http://127.0.0.1:8080/x",
                "http://localhost/x",
                "http://10.0.0.8/x",
                "http://169.254.169.254/",
                "http://[::1]/x",
            ):
                message = assert_error(await client.post(URL, json={"url": url}, headers=headers), 400, "invalid_url")
                assert "must be public" in message and "DALSTON_ALLOW_PRIVATE_URLS" in message
            ok = await client.post(URL, json={"url": "https://93.184.216.34/hook"}, headers=headers)
            assert ok.status_code == 201, ok.text
            patched = await client.patch(f"{URL}/{ok.json()['id']}", json={"url": "http://192.168.1.1/"}, headers=headers)
            assert_error(patched, 400, "invalid_url")


async def test_scope_and_tenant_isolation(api: Api, gateway) -> None:
    client, svc = gateway
    created = await api.register("http://127.0.0.1:9/hook")
    other_key, _ = await add_key(svc, ["webhooks"])
    other = {"Authorization": f"Bearer {other_key}"}
    for method, path in [
        ("GET", f"{URL}/{created['id']}"),
        ("PATCH", f"{URL}/{created['id']}"),
        ("DELETE", f"{URL}/{created['id']}"),
        ("POST", f"{URL}/{created['id']}/rotate-secret"),
        ("GET", f"{URL}/{created['id']}/deliveries"),
    ]:
        kwargs = {"json": {"active": False}} if method == "PATCH" else {}
        assert_error(await client.request(method, path, headers=other, **kwargs), 404, "webhook_not_found")
    assert (await client.get(URL, headers=other)).json() == {"webhooks": []}
    assert (await api.request("GET", f"{URL}/{created['id']}")).json()["active"] is True  # untouched

    reader_key, _ = await add_key(svc, ["jobs:read", "jobs:write"])
    assert_error(await client.get(URL, headers={"Authorization": f"Bearer {reader_key}"}), 403, "insufficient_scope")
    admin_key, _ = await add_key(svc, ["admin"])
    assert (await client.get(URL, headers={"Authorization": f"Bearer {admin_key}"})).status_code == 200
    assert_error(await client.get(URL), 401, "missing_api_key")


# --- delivery -----------------------------------------------------------------------


async def test_completed_job_is_delivered_signed(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.start()
    webhook = await api.register(receiver.url)
    failures_only = await api.register(receiver.url.replace("/hook", "/failures"), events=["job.failed"])
    await start_deliverer()

    job_id = await finish_job(api, JobStatus.completed)
    await eventually(lambda: receiver.requests, "the delivery")

    [request] = receiver.requests
    payload = Webhook(webhook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "job.completed"
    assert payload["data"]["id"] == job_id and payload["data"]["status"] == "completed"
    assert payload["data"]["transcript_url"] == f"/v1/audio/transcriptions/{job_id}"
    assert payload["data"]["audio_duration"] == 2.5 and payload["data"]["error"] is None
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"

    async def delivered() -> list[dict]:
        deliveries = await api.deliveries(webhook["id"])
        return deliveries if deliveries and deliveries[0]["status"] == "delivered" else []

    [delivery] = await eventually(delivered, "the delivery to be recorded")
    assert delivery["job_id"] == job_id and delivery["event"] == "job.completed" and delivery["format"] == "native"
    assert request.headers["webhook-id"] == f"msg_{uuid.UUID(delivery['id']).hex}"
    assert delivery["attempts"] == 1 and delivery["next_attempt_at"] is None and delivery["finished_at"]
    [attempt] = delivery["history"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["response_body"] == "answered 200"
    assert attempt["duration_ms"] >= 0
    assert await api.deliveries(failures_only["id"]) == []  # not subscribed to completions


async def test_elevenlabs_webhook_delivery_verifies_with_the_sdk(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.start()
    webhook = await api.register(receiver.url)
    other = await api.register(receiver.url.replace("/hook", "/native"))
    await start_deliverer()

    el = {
        "request_id": "req_abc",
        "webhook": True,
        "webhook_id": webhook["id"],
        "webhook_metadata": {"order": 7},
        "request_options": {"timestamps_granularity": "character"},
    }
    job_id = await finish_job(api, JobStatus.completed, parameters={"elevenlabs": el})
    await eventually(lambda: len(receiver.requests) == 2, "both deliveries")

    by_path = {json.loads(r.body).get("type"): r for r in receiver.requests}
    request = by_path["speech_to_text_transcription"]
    event = ElevenLabs(api_key="unused").webhooks.construct_event(
        rawBody=request.body, sig_header=request.headers["elevenlabs-signature"], secret=webhook["secret"]
    )
    assert event["type"] == "speech_to_text_transcription" and isinstance(event["event_timestamp"], int)
    data = event["data"]
    assert data["request_id"] == "req_abc" and data["transcription_id"] == job_id
    assert data["webhook_metadata"] == {"order": 7}
    chunk = data["transcription"]
    assert chunk["text"] == "hello webhook world" and chunk["language_code"] == "eng"
    words = [w for w in chunk["words"] if w["type"] == "word"]
    assert [w["text"] for w in words] == ["hello", "webhook", "world"]
    # The stored request options shape the transcription, as in the synchronous response.
    assert "".join(c["text"] for c in words[0]["characters"]) == "hello"
    assert chunk["transcription_id"] == job_id and chunk["audio_duration_secs"] == 2.5
    assert "webhook-signature" not in request.headers

    # The endpoint the request did not name gets the native event.
    native = by_path["job.completed"]
    assert Webhook(other["secret"]).verify(native.body, native.headers)["data"]["id"] == job_id


async def test_delivery_survives_a_receiver_that_is_down(api: Api, receiver: Receiver, start_deliverer) -> None:
    webhook = await api.register(receiver.url)  # nothing listens yet
    await start_deliverer()
    job_id = await finish_job(api, JobStatus.failed)

    async def failed_attempts() -> bool:
        deliveries = await api.deliveries(webhook["id"])
        return bool(deliveries) and len(deliveries[0]["history"]) >= 2

    await eventually(failed_attempts, "two failed attempts")
    receiver.statuses = [503]  # up, but its first answer is an error
    receiver.start()

    async def delivered() -> dict | None:
        [delivery] = await api.deliveries(webhook["id"])
        return delivery if delivery["status"] == "delivered" else None

    delivery = await eventually(delivered, "the delivery after retries")
    history = delivery["history"]
    assert [a["attempt"] for a in history] == list(range(1, len(history) + 1)) == list(range(1, delivery["attempts"] + 1))
    refused = [a for a in history if a["status_code"] is None]
    assert len(refused) >= 2 and all("ConnectError" in a["error"] for a in refused)
    assert history[-2]["status_code"] == 503 and history[-2]["error"] == "HTTP 503"
    assert history[-1]["status_code"] == 200 and history[-1]["error"] is None

    # Both HTTP attempts carried the same message: the receiver can deduplicate on webhook-id.
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    payload = Webhook(webhook["secret"]).verify(second.body, second.headers)
    assert payload["type"] == "job.failed" and payload["data"]["id"] == job_id
    assert payload["data"]["error"] == "transcribe failed: boom" and payload["data"]["transcript_url"] is None


async def test_refused_url_is_never_contacted(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.start()
    webhook = await api.register(receiver.url)  # accepted while private URLs were allowed
    await start_deliverer(allow_private_urls=False)  # ... and refused when delivering
    await finish_job(api, JobStatus.completed)

    async def failed() -> dict | None:
        deliveries = await api.deliveries(webhook["id"])
        return deliveries[0] if deliveries and deliveries[0]["status"] == "failed" else None

    delivery = await eventually(failed, "the refused delivery to fail")
    assert delivery["attempts"] == 1  # refusals are not retried
    [attempt] = delivery["history"]
    assert attempt["status_code"] is None and attempt["error"].startswith("refused:") and "127.0.0.1" in attempt["error"]
    await asyncio.sleep(1.0)  # several poll intervals: still nothing
    assert receiver.requests == []


async def test_gone_disables_the_endpoint_and_attempts_are_capped(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.statuses = [410]
    receiver.start()
    gone = await api.register(receiver.url)
    await start_deliverer(webhook_max_attempts=2)
    await finish_job(api, JobStatus.completed)

    async def disabled() -> dict | None:
        got = (await api.request("GET", f"{URL}/{gone['id']}")).json()
        return got if not got["active"] else None

    got = await eventually(disabled, "the endpoint to be disabled")
    assert "410" in got["disabled_reason"]
    [delivery] = await api.deliveries(gone["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["last_status_code"] == 410

    # A disabled endpoint gets nothing new; re-activating it clears the reason.
    await finish_job(api, JobStatus.completed)
    assert len(await api.deliveries(gone["id"])) == 1
    reactivated = (await api.request("PATCH", f"{URL}/{gone['id']}", json={"active": True})).json()
    assert reactivated["active"] is True and reactivated["disabled_reason"] is None

    # A receiver that keeps failing: the delivery fails after webhook_max_attempts.
    receiver.statuses = [500, 500, 500]
    await finish_job(api, JobStatus.completed)

    async def exhausted() -> dict | None:
        deliveries = await api.deliveries(gone["id"])
        return deliveries[0] if deliveries[0]["status"] == "failed" and len(deliveries) == 2 else None

    delivery = await eventually(exhausted, "attempts to run out")
    assert delivery["attempts"] == 2 and [a["status_code"] for a in delivery["history"]] == [500, 500]


async def test_cancel_writes_the_outbox_row_once(api: Api) -> None:
    webhook = await api.register("http://127.0.0.1:9/hook", events=["job.cancelled"])
    async with api.services.sessionmaker() as db, db.begin():
        job = Job(tenant_id=api.tenant_id, status="pending", model="tiny.en", speaker_detection="none", parameters={},
                  audio_key="uploads/y.wav", audio_bytes=1, audio_duration=1.0, audio_channels=1, audio_sample_rate=16_000)  # fmt: skip
        db.add(job)
    response = await api.request("POST", f"/v1/audio/transcriptions/{job.id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    async with api.services.sessionmaker() as db, db.begin():
        rows = list(await db.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)))
        assert [(str(r.endpoint_id), r.event, r.format, r.status) for r in rows] == [
            (webhook["id"], "job.cancelled", "native", "pending")
        ]
        assert rows[0].payload["data"]["status"] == "cancelled"
        # The orchestrator finishes the cancelled job again when its event arrives: no duplicate.
        assert await enqueue_deliveries(db, await db.get(Job, job.id)) == 0


async def test_slow_receiver_times_out_then_succeeds(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.delays = [3.0]
    receiver.start()
    webhook = await api.register(receiver.url)
    await start_deliverer(webhook_timeout_s=0.5)
    await finish_job(api, JobStatus.completed)

    async def delivered() -> dict | None:
        deliveries = await api.deliveries(webhook["id"])
        return deliveries[0] if deliveries and deliveries[0]["status"] == "delivered" else None

    delivery = await eventually(delivered, "the delivery after a timeout")
    first, *_, last = delivery["history"]
    assert first["status_code"] is None
    assert "timed out" in first["error"] or "Timeout" in first["error"], first["error"]
    assert last["status_code"] == 200


async def test_job_deleted_before_elevenlabs_delivery(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.start()
    webhook = await api.register(receiver.url)
    job_id = await finish_job(api, JobStatus.completed, parameters={"elevenlabs": {"webhook": True}})
    assert (await api.request("DELETE", f"/v1/audio/transcriptions/{job_id}")).status_code == 204
    await start_deliverer()

    async def failed() -> dict | None:
        deliveries = await api.deliveries(webhook["id"])
        return deliveries[0] if deliveries and deliveries[0]["status"] == "failed" else None

    delivery = await eventually(failed, "the orphaned delivery to fail")
    assert delivery["job_id"] is None and delivery["format"] == "elevenlabs"
    assert delivery["last_error"] == "the job was deleted before its webhook was delivered"
    assert receiver.requests == []


def start_orchestrator(settings: Settings, data_dir: Path, **env: str) -> subprocess.Popen:
    """`python -m orchestrator` on the test's database and Redis, delivering to loopback."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator"],
        cwd=ROOT,
        env={
            **os.environ,
            "DALSTON_DATABASE_URL": settings.database_url,
            "DALSTON_REDIS_URL": settings.redis_url,
            "DALSTON_DATA_DIR": str(data_dir),
            "DALSTON_ALLOW_PRIVATE_URLS": "true",
            "DALSTON_WEBHOOK_POLL_INTERVAL_S": "0.2",
            **env,
        },
    )


async def test_orchestrator_process_delivers(api: Api, receiver: Receiver, settings: Settings, tmp_path: Path) -> None:
    """`python -m orchestrator` runs the deliverer beside the event loop, counts its attempts
    on its /metrics, and stops cleanly."""
    receiver.start()
    webhook = await api.register(receiver.url)
    metrics_port = free_port()
    proc = start_orchestrator(settings, tmp_path, DALSTON_METRICS_PORT=str(metrics_port))
    try:
        job_id = await finish_job(api, JobStatus.cancelled)
        await eventually(lambda: receiver.requests, "the orchestrator process to deliver")
        [request] = receiver.requests
        payload = Webhook(webhook["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "job.cancelled" and payload["data"]["id"] == job_id

        async def counted() -> float | None:  # the attempt is recorded just after the POST
            samples = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
            return sample(samples, "dalston_webhook_attempts_total", result="delivered")

        assert await eventually(counted, "the delivered attempt on the orchestrator's metrics") == 1.0
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(proc.wait, TIMEOUT)
    assert returncode == 0


async def test_two_orchestrators_share_deliveries_and_send_each_once(
    api: Api, receiver: Receiver, settings: Settings, tmp_path: Path
) -> None:
    """Two orchestrator processes drain one outbox (FOR UPDATE SKIP LOCKED + a lease): every
    delivery reaches the receiver once, recorded as one attempt."""
    receiver.start()
    webhook = await api.register(receiver.url)
    ports = [free_port(), free_port()]
    procs = [start_orchestrator(settings, tmp_path, DALSTON_METRICS_PORT=str(port)) for port in ports]
    try:
        job_ids = {await finish_job(api, JobStatus.cancelled) for _ in range(20)}

        async def all_delivered() -> list[dict] | None:
            deliveries = await api.deliveries(webhook["id"])
            done = len(deliveries) == len(job_ids) and all(d["status"] == "delivered" for d in deliveries)
            return deliveries if done else None

        deliveries = await eventually(all_delivered, "every delivery to be made")
        assert [d["attempts"] for d in deliveries] == [1] * len(job_ids)
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert len(ids) == len(set(ids)) == len(job_ids)
        assert {Webhook(webhook["secret"]).verify(r.body, r.headers)["data"]["id"] for r in receiver.requests} == job_ids
        split = [
            sample(scrape(f"http://127.0.0.1:{port}/metrics"), "dalston_webhook_attempts_total", result="delivered") or 0
            for port in ports
        ]
        assert sum(split) == len(job_ids)
        print(f"\ndeliveries per orchestrator: {split}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await asyncio.to_thread(proc.wait, TIMEOUT)


async def test_orchestrator_killed_mid_delivery_delivers_after_restart(
    api: Api, receiver: Receiver, settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL while the POST is in flight: the delivery stays leased, nothing is recorded, and a
    restarted orchestrator delivers it once the lease lapses — the same message (same
    `webhook-id`, so the receiver can tell the repeat), recorded as one attempt."""
    receiver.delays = [5.0]  # the first POST stalls: the orchestrator dies holding it
    receiver.start()
    webhook = await api.register(receiver.url)
    env = {"DALSTON_WEBHOOK_TIMEOUT_S": "2"}  # lease = timeout + orchestrator.webhooks.LEASE_MARGIN_S
    first = start_orchestrator(settings, tmp_path, **env)
    try:
        job_id = await finish_job(api, JobStatus.cancelled)
        await eventually(lambda: receiver.requests, "the first POST to arrive")
    finally:
        first.kill()
        await asyncio.to_thread(first.wait, TIMEOUT)
    [pending] = await api.deliveries(webhook["id"])
    assert pending["status"] == "pending" and pending["attempts"] == 0, pending
    second = start_orchestrator(settings, tmp_path, **env)
    try:
        delivered = await eventually(lambda: settled(api, webhook["id"], 1), "the restarted orchestrator to deliver")
        assert delivered["status"] == "delivered", delivered
        assert len(receiver.requests) == 2
        first_try, second_try = receiver.requests
        assert first_try.headers["webhook-id"] == second_try.headers["webhook-id"]
        assert Webhook(webhook["secret"]).verify(second_try.body, second_try.headers)["data"]["id"] == job_id
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, TIMEOUT)


# --- redelivery ---------------------------------------------------------------------


def redeliver_path(webhook_id: str, delivery_id: str) -> str:
    return f"{URL}/{webhook_id}/deliveries/{delivery_id}/redeliver"


async def settled(api: Api, webhook_id: str, attempts: int) -> dict | None:
    """The endpoint's only delivery once it is finished after `attempts` attempts."""
    [delivery] = await api.deliveries(webhook_id)
    return delivery if delivery["status"] != "pending" and delivery["attempts"] == attempts else None


async def test_redelivery_resends_the_same_message_signed_afresh(api: Api, receiver: Receiver, start_deliverer) -> None:
    receiver.statuses = [500]  # the first attempt fails, and with one attempt allowed the delivery fails
    receiver.start()
    webhook = await api.register(receiver.url)
    await start_deliverer(webhook_max_attempts=1)
    job_id = await finish_job(api, JobStatus.completed)
    failed = await eventually(lambda: settled(api, webhook["id"], 1), "the delivery to fail")
    assert failed["status"] == "failed" and failed["last_status_code"] == 500

    # The receiver is fixed and the secret rotated; then the operator redelivers.
    rotated = (await api.request("POST", f"{URL}/{webhook['id']}/rotate-secret")).json()
    response = await api.request("POST", redeliver_path(webhook["id"], failed["id"]))
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["id"] == failed["id"] and queued["status"] == "pending" and queued["finished_at"] is None
    assert queued["next_attempt_at"] is not None and [a["status_code"] for a in queued["history"]] == [500]

    delivered = await eventually(lambda: settled(api, webhook["id"], 2), "the redelivery")
    assert delivered["status"] == "delivered" and delivered["last_status_code"] == 200 and delivered["job_id"] == job_id
    assert [(a["attempt"], a["status_code"]) for a in delivered["history"]] == [(1, 500), (2, 200)]  # the history is kept

    first, second = receiver.requests
    # The same message (Standard Webhooks: a resent message keeps its id), signed with the new secret.
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{uuid.UUID(failed['id']).hex}"
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    payload = Webhook(rotated["secret"]).verify(second.body, second.headers)
    assert payload["type"] == "job.completed" and payload["data"]["id"] == job_id
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(webhook["secret"]).verify(second.body, second.headers)

    # A delivered one can be sent again too: one more attempt, one more request.
    assert (await api.request("POST", redeliver_path(webhook["id"], failed["id"]))).status_code == 202
    again = await eventually(lambda: settled(api, webhook["id"], 3), "the second redelivery")
    assert again["status"] == "delivered" and len(receiver.requests) == 3

    async with api.services.sessionmaker() as db:
        rows = list(
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.redelivered").order_by(AuditEvent.id))
        )
    mine = [r for r in rows if r.tenant_id == api.tenant_id]
    assert [r.details["previous_status"] for r in mine] == ["failed", "delivered"]
    assert all(r.resource_id == webhook["id"] and r.details["delivery_id"] == failed["id"] for r in mine)


async def test_redelivery_refusals(api: Api, gateway, receiver: Receiver, start_deliverer) -> None:
    client, svc = gateway
    receiver.start()
    webhook = await api.register(receiver.url)
    sibling = await api.register(receiver.url.replace("/hook", "/sibling"), events=["job.failed"])
    job_id = await finish_job(api, JobStatus.completed)

    # Not attempted yet: still pending, so it is already queued (and could be in flight).
    [pending] = await api.deliveries(webhook["id"])
    assert pending["status"] == "pending"
    assert_error(await api.request("POST", redeliver_path(webhook["id"], pending["id"])), 409, "delivery_pending")

    await start_deliverer()
    delivery = await eventually(lambda: settled(api, webhook["id"], 1), "the delivery")
    path = redeliver_path(webhook["id"], delivery["id"])

    # Unknown, malformed, or another endpoint's delivery: 404.
    assert_error(await api.request("POST", redeliver_path(webhook["id"], str(uuid.uuid4()))), 404, "delivery_not_found")
    assert_error(await api.request("POST", redeliver_path(webhook["id"], "nope")), 404, "delivery_not_found")
    assert_error(await api.request("POST", redeliver_path(sibling["id"], delivery["id"])), 404, "delivery_not_found")
    # Another tenant cannot see the endpoint at all; a key without the scope is refused.
    other_key, _ = await add_key(svc, ["webhooks"])
    assert_error(await client.post(path, headers={"Authorization": f"Bearer {other_key}"}), 404, "webhook_not_found")
    reader_key, _ = await add_key(svc, ["jobs:read"], tenant=None)
    assert_error(await client.post(path, headers={"Authorization": f"Bearer {reader_key}"}), 403, "insufficient_scope")

    # A disabled endpoint gets nothing: 409 until it is enabled again.
    assert (await api.request("PATCH", f"{URL}/{webhook['id']}", json={"active": False})).status_code == 200
    message = assert_error(await api.request("POST", path), 409, "webhook_disabled")
    assert "enable" in message
    [unchanged] = await api.deliveries(webhook["id"])
    assert unchanged["status"] == "delivered" and unchanged["attempts"] == 1
    assert (await api.request("PATCH", f"{URL}/{webhook['id']}", json={"active": True})).status_code == 200
    assert (await api.request("POST", path)).status_code == 202
    await eventually(lambda: settled(api, webhook["id"], 2), "the redelivery after re-enabling")
    assert [json.loads(r.body)["data"]["id"] for r in receiver.requests] == [job_id, job_id]

    # A deleted endpoint's deliveries go with it.
    assert (await api.request("DELETE", f"{URL}/{webhook['id']}")).status_code == 204
    assert_error(await api.request("POST", path), 404, "webhook_not_found")


async def test_an_edit_is_audited_with_the_url_change(api: Api) -> None:
    webhook = await api.register("http://127.0.0.1:9/old")
    body = {"url": "http://127.0.0.1:9/new", "events": ["job.failed"], "description": None}
    edited = (await api.request("PATCH", f"{URL}/{webhook['id']}", json=body)).json()
    assert edited["url"] == body["url"] and edited["events"] == ["job.failed"] and edited["description"] is None
    async with api.services.sessionmaker() as db:
        [row] = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == "webhook.updated", AuditEvent.resource_id == webhook["id"])
        )
    assert row.tenant_id == api.tenant_id and row.details == {
        "fields": ["description", "events", "url"],
        "previous_url": "http://127.0.0.1:9/old",
        "url": "http://127.0.0.1:9/new",
    }
