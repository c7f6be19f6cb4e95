"""GET /v1/audio/enrichment lists every detectable type with its category and method; any key
that can read jobs may list them, others are refused."""

from __future__ import annotations

from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from shared.entities import CATEGORIES, ENTITY_TYPES


async def test_entity_types_listing(make_client) -> None:  # noqa: F811
    client, services = await make_client()
    client.headers["Authorization"] = f"Bearer {await add_key(services, scopes=['jobs:read'])}"
    response = await client.get("/v1/audio/enrichment")
    assert response.status_code == 200
    body = response.json()
    assert body["categories"] == list(CATEGORIES)
    assert [t["id"] for t in body["entity_types"]] == list(ENTITY_TYPES)
    card = next(t for t in body["entity_types"] if t["id"] == "credit_card")
    assert card["category"] == "pci" and "Luhn" in card["method"]
    assert all(t["method"] for t in body["entity_types"])


async def test_entity_types_need_jobs_read(make_client) -> None:  # noqa: F811
    client, services = await make_client()
    client.headers["Authorization"] = f"Bearer {await add_key(services, scopes=['webhooks'])}"
    refused = await client.get("/v1/audio/enrichment")
    assert refused.status_code == 403
    assert "error" in refused.json() or "detail" in refused.json()
    del client.headers["Authorization"]
    assert (await client.get("/v1/audio/enrichment")).status_code == 401
