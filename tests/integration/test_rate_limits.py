"""Per-tenant rate limits (gateway/ratelimit.py) against real PostgreSQL and Redis.

Requests per window and concurrent jobs through the app in-process; concurrent realtime
sessions through a real gateway process and a realtime worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from gateway_process import Gateway, start_gateway
from sqlalchemy import select, update
from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from gateway.services import Services
from shared.db import Job, Tenant

ROOT = Path(__file__).resolve().parents[2]
SHORT_WAV = ROOT / "tests" / "fixtures" / "short_en.wav"
LIST = "/v1/audio/transcriptions"


async def _wait_for_room(services: Services, window_s: int, needed_s: float) -> None:
    """Start a burst early in a window, so it cannot straddle two (windows are clock-aligned)."""
    seconds, micros = await services.redis.time()
    left = window_s - ((seconds * 1000 + micros // 1000) % (window_s * 1000)) / 1000
    if left < needed_s:
        await asyncio.sleep(left + 0.05)


def _assert_limited(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= 1


async def test_request_burst_lets_exactly_the_limit_through(make_client) -> None:  # noqa: F811
    client, services = await make_client(rate_limit_requests=10, rate_limit_window_s=60)
    key = await add_key(services)
    other = await add_key(services)
    await _wait_for_room(services, 60, 20)

    responses = await asyncio.gather(*(client.get(LIST, headers={"Authorization": f"Bearer {key}"}) for _ in range(25)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [429] * 15
    for response in responses:
        if response.status_code == 429:
            _assert_limited(response, 10)
            assert response.json()["error"]["code"] == "rate_limited"
        else:
            assert response.headers["RateLimit-Limit"] == "10"
    assert sorted(int(r.headers["RateLimit-Remaining"]) for r in responses if r.status_code == 200) == list(range(10))

    # Another tenant has its own window.
    assert (await client.get(LIST, headers={"Authorization": f"Bearer {other}"})).status_code == 200

    # Each API refuses in its own shape.
    headers = {"Authorization": f"Bearer {key}"}
    openai = await client.get("/v1/models", headers=headers)
    _assert_limited(openai, 10)
    assert openai.json()["error"]["type"] == "rate_limit_error"
    elevenlabs = await client.get("/v1/speech-to-text/transcripts/unknown", headers={"xi-api-key": key})
    _assert_limited(elevenlabs, 10)
    assert elevenlabs.json()["detail"]["status"] == "rate_limited"


async def test_window_resets_as_documented(make_client) -> None:  # noqa: F811
    client, services = await make_client(rate_limit_requests=3, rate_limit_window_s=2)
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    await _wait_for_room(services, 2, 1.5)
    for expected in (2, 1, 0):
        response = await client.get(LIST)
        assert response.status_code == 200 and response.headers["RateLimit-Remaining"] == str(expected)
    refused = await client.get(LIST)
    _assert_limited(refused, 3)
    reset = int(refused.headers["RateLimit-Reset"])
    assert reset <= 2 and refused.headers["Retry-After"] == str(reset)

    await asyncio.sleep(reset + 0.1)  # the window turns at the announced time
    fresh = await client.get(LIST)
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["RateLimit-Remaining"] == "2"


async def test_per_tenant_override(make_client) -> None:  # noqa: F811
    client, services = await make_client(rate_limit_requests=100)
    key = await add_key(services, tenant="limited-tenant")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get(LIST, headers=headers)).headers["RateLimit-Limit"] == "100"
    async with services.sessionmaker() as db:
        tenant_id = await db.scalar(select(Tenant.id).where(Tenant.name == "limited-tenant"))

    # The count lives in Redis, shared by every gateway: the request above already used
    # this window's one request the override allows.
    limited, _ = await make_client(rate_limit_requests=100, rate_limit_overrides={str(tenant_id): {"requests": 1}})
    _assert_limited(await limited.get(LIST, headers=headers), 1)
    other = await add_key(services)
    assert (await limited.get(LIST, headers={"Authorization": f"Bearer {other}"})).headers["RateLimit-Limit"] == "100"


async def test_concurrent_jobs_limit_holds_under_a_burst(make_client) -> None:  # noqa: F811
    client, services = await make_client(rate_limit_concurrent_jobs=3)
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    audio = SHORT_WAV.read_bytes()

    # No orchestrator runs here, so every accepted job stays pending and holds its slot.
    responses = await asyncio.gather(*(client.post(LIST, files={"file": ("short.wav", audio, "audio/wav")}) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [429] * 5, [r.text for r in responses]
    refused = [r for r in responses if r.status_code == 429]
    for response in refused:
        _assert_limited(response, 3)
        assert response.json()["error"]["code"] == "too_many_concurrent_jobs"

    # A request the client must fix gets its 4xx, not a 429 it would retry in vain.
    bad = await client.post(LIST, files={"file": ("bad.wav", b"not audio at all" * 100, "audio/wav")})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_audio"
    bad_model = await client.post(LIST, files={"file": ("short.wav", audio, "audio/wav")}, data={"model": "nope"})
    assert bad_model.status_code == 400

    # A finished job frees its slot.
    done = next(r for r in responses if r.status_code == 201).json()["id"]
    async with services.sessionmaker() as db:
        await db.execute(update(Job).where(Job.id == done).values(status="completed"))
        await db.commit()
    assert (await client.post(LIST, files={"file": ("short.wav", audio, "audio/wav")})).status_code == 201
    assert (await client.post(LIST, files={"file": ("short.wav", audio, "audio/wav")})).status_code == 429


async def test_openai_and_elevenlabs_concurrency_refusals_in_their_shapes(make_client) -> None:  # noqa: F811
    client, services = await make_client(rate_limit_concurrent_jobs=1)
    key = await add_key(services)
    audio = SHORT_WAV.read_bytes()
    first = await client.post(LIST, files={"file": ("short.wav", audio)}, headers={"Authorization": f"Bearer {key}"})
    assert first.status_code == 201
    openai = await client.post(
        LIST, files={"file": ("short.wav", audio)}, data={"model": "whisper-1"}, headers={"Authorization": f"Bearer {key}"}
    )
    _assert_limited(openai, 1)
    assert openai.json()["error"]["type"] == "rate_limit_error"
    elevenlabs = await client.post(
        "/v1/speech-to-text", files={"file": ("short.wav", audio)}, data={"model_id": "scribe_v1"}, headers={"xi-api-key": key}
    )
    _assert_limited(elevenlabs, 1)
    assert elevenlabs.json()["detail"]["status"] == "too_many_concurrent_jobs"


# -- concurrent realtime sessions through a real gateway and worker ---------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    env = {"DALSTON_RATE_LIMIT_CONCURRENT_SESSIONS": "2", "DALSTON_REALTIME_WORKER_CAPACITY": "4"}
    yield from start_gateway(tmp_path_factory.mktemp("ratelimit-gw"), env, worker=True)


async def _open(
    gateway: Gateway, key: str, path: str = "/v1/audio/transcriptions/stream"
) -> tuple[websockets.ClientConnection, dict]:
    ws = await websockets.connect(
        f"{gateway.ws_url}{path}", additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=30
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), 60))
    return ws, first


async def test_concurrent_sessions_limit(gateway: Gateway) -> None:
    key = await gateway.add_key()
    other = await gateway.add_key()
    opened = await asyncio.gather(*(_open(gateway, key) for _ in range(4)))
    begun = [ws for ws, first in opened if first["type"] == "session.begin"]
    refused = [(ws, first) for ws, first in opened if first["type"] == "error"]
    assert len(begun) == 2 and len(refused) == 2, [first for _, first in opened]
    for ws, first in refused:
        assert first["code"] == "too_many_concurrent_sessions" and first["fatal"] is True
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
        assert ws.close_code == 1013

    # Another tenant is unaffected; ElevenLabs clients get their own message type.
    ws_other, first = await _open(gateway, other)
    assert first["type"] == "session.begin"
    ws_el, first = await _open(gateway, key, "/v1/speech-to-text/realtime?model_id=scribe_v2_realtime")
    assert first["message_type"] == "rate_limited"

    # Ending a session frees its slot at once.
    await begun[0].send(json.dumps({"type": "end"}))
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(begun[0].recv(), 60)
    deadline = time.monotonic() + 30
    while True:
        ws, first = await _open(gateway, key)
        if first["type"] == "session.begin" or time.monotonic() > deadline:
            break
        await ws.close()
        await asyncio.sleep(0.2)
    assert first["type"] == "session.begin", first
    for conn in (ws, begun[1], ws_other, ws_el):
        await conn.close()
