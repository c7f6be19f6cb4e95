"""The console login's brute-force throttle (gateway/console/login_throttle.py) against
real PostgreSQL and Redis: failed logins are counted per client address; past the limit
that address gets `429 rate_limited` with `Retry-After` until the window ends, while other
addresses and successful logins are unaffected.

Client addresses are set on the ASGI transport (what uvicorn passes as the peer).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.services import Services
from shared.bootstrap import generate_key, hash_key, key_prefix
from shared.db import ApiKey, Tenant
from shared.settings import Settings

LOGIN = "/v1/console/session"
MAX_FAILURES = 3
WINDOW_S = 2


@pytest.fixture
async def app_services(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[object, Services]]:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        storage_backend="fs",
        console_login_max_failures=MAX_FAILURES,
        console_login_window_s=WINDOW_S,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.services


@pytest.fixture
async def client_from(app_services) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """A client whose requests come from the given address (no cookie jar kept between calls)."""
    app, _ = app_services
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def admin_key(app_services) -> str:
    _, services = app_services
    secret = generate_key()
    async with services.sessionmaker() as db, db.begin():
        tenant = Tenant(name=f"throttle-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
        await db.flush()
        db.add(ApiKey(tenant_id=tenant.id, name="t", prefix=key_prefix(secret), key_hash=hash_key(secret), scopes=["admin"]))
    return secret


async def log_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    response = await client.post(LOGIN, json={"api_key": key})
    client.cookies.clear()
    return response


def wrong_key() -> str:
    return generate_key()  # well-formed, never issued


async def test_failed_logins_from_one_address_are_throttled(client_from, admin_key: str) -> None:
    attacker = client_from("203.0.113.7")
    for _ in range(MAX_FAILURES):
        response = await log_in(attacker, wrong_key())
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"

    # Past the limit even the right key is refused from there: the answer must not tell them apart.
    throttled = await log_in(attacker, admin_key)
    assert throttled.status_code == 429, throttled.text
    assert throttled.json() == {"error": {"code": "rate_limited", "message": throttled.json()["error"]["message"]}}
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    assert f"try again in {retry_after} s" in throttled.json()["error"]["message"]
    assert throttled.headers["RateLimit-Remaining"] == "0" and "set-cookie" not in throttled.headers
    assert (await log_in(attacker, wrong_key())).status_code == 429  # refused before the key is looked at

    # Another address is not affected.
    colleague = client_from("198.51.100.20")
    assert (await log_in(colleague, admin_key)).status_code == 201

    # Once the window has ended the right key works again from the throttled address
    # (429s do not count as failures, so polling with the right key does not extend it).
    deadline = time.monotonic() + 30
    while (response := await log_in(attacker, admin_key)).status_code == 429:
        assert time.monotonic() < deadline, "the throttle never lifted"
        await asyncio.sleep(0.2)
    assert response.status_code == 201, response.text


async def test_successful_logins_do_not_count(client_from, admin_key: str) -> None:
    operator = client_from("192.0.2.44")
    for _ in range(MAX_FAILURES + 2):
        assert (await log_in(operator, admin_key)).status_code == 201
    for _ in range(MAX_FAILURES - 1):  # a few typos in between
        assert (await log_in(operator, wrong_key())).status_code == 401
    assert (await log_in(operator, admin_key)).status_code == 201
    # ... and a success does not reset the count: one more failure reaches the limit.
    assert (await log_in(operator, wrong_key())).status_code == 401
    assert (await log_in(operator, admin_key)).status_code == 429


async def test_a_zero_limit_turns_the_throttle_off(database_url: str, redis_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url, redis_url=redis_url, data_dir=tmp_path, storage_backend="fs", console_login_max_failures=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.99", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            for _ in range(MAX_FAILURES * 3):
                assert (await log_in(client, wrong_key())).status_code == 401
