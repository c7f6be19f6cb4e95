"""The jobs list's filters (`GET /v1/audio/transcriptions?status=&model=&speaker_detection=
&created_after=&created_before=&q=`) against real PostgreSQL and Redis: each filter, their
combinations, keyset pages under a filter, tenant isolation, bad values, and the indexes of
migration 0008 that serve them.

A database of its own: the rows are inserted with chosen models, speaker modes, file names
and creation times, and an exact list is asserted for each query.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from test_console import Gateway, add_key, gw, own_database, tenant_id_of

from gateway.services import Services
from shared.db import Job

__all__ = ["gw", "own_database"]  # test_console's module-scoped fixtures: a gateway on a database of its own
URL = "/v1/audio/transcriptions"
T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


@dataclass
class Fixture:
    client: httpx.AsyncClient  # the key of tenant "alpha"
    app: Any
    services: Services
    ids: dict[str, str]  # label → job id (alpha's jobs, and "beta-*" of the other tenant)
    beta_key: str


# label, tenant, status, model, speaker mode, file name, hours after T0
JOBS = [
    ("a1", "alpha", "completed", "whisper-large-v3", "none", "Board-Meeting-2026.wav", 0),
    ("a2", "alpha", "failed", "whisper-large-v3", "diarize", "call_center_01.mp3", 1),
    ("a3", "alpha", "completed", "parakeet-tdt-0.6b-v2", "diarize", "board-meeting-march.m4a", 2),
    ("a4", "alpha", "pending", "parakeet-tdt-0.6b-v2", "per_channel", "stereo-interview.wav", 3),
    ("a5", "alpha", "cancelled", "whisper-small", "none", "100%_done.wav", 4),
    ("a6", "alpha", "completed", "whisper-large-v3", "diarize", "call-center-02.mp3", 5),
    ("a7", "alpha", "completed", "whisper-large-v3", "none", None, 6),  # a URL submission without a name
    ("beta-1", "beta", "completed", "whisper-large-v3", "diarize", "board-meeting-beta.wav", 2),
]


@pytest.fixture(scope="module")
async def fx(gw: Gateway) -> AsyncIterator[Fixture]:
    services = gw.services
    alpha_key = await add_key(services, "filters-alpha", ["jobs:read"])
    beta_key = await add_key(services, "filters-beta", ["jobs:read"])
    alpha, beta = await tenant_id_of(gw, alpha_key), await tenant_id_of(gw, beta_key)
    tenants = {"alpha": alpha, "beta": beta}
    ids: dict[str, str] = {}
    async with services.sessionmaker() as db, db.begin():
        for label, tenant, status, model, speakers, filename, hours in JOBS:
            job_id = uuid.uuid4()
            ids[label] = str(job_id)
            db.add(
                Job(
                    id=job_id,
                    tenant_id=tenants[tenant],
                    status=status,
                    model=model,
                    speaker_detection=speakers,
                    parameters={},
                    audio_key=f"jobs/{job_id}/audio",
                    audio_filename=filename,
                    audio_bytes=1000,
                    audio_duration=1.0,
                    audio_channels=2 if speakers == "per_channel" else 1,
                    audio_sample_rate=16_000,
                    created_at=T0 + timedelta(hours=hours),
                )
            )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway", headers={"Authorization": f"Bearer {alpha_key}"}
    )
    try:
        yield Fixture(client, gw.app, services, ids, beta_key)
    finally:
        await client.aclose()


async def listed(fx: Fixture, client: httpx.AsyncClient | None = None, **params: str | int) -> list[str]:
    """The labels of the jobs listed for `params`, newest first."""
    response = await (client or fx.client).get(URL, params=params)
    assert response.status_code == 200, response.text
    by_id = {v: k for k, v in fx.ids.items()}
    return [by_id[j["id"]] for j in response.json()["jobs"]]


def iso(at: datetime) -> str:
    return at.isoformat()


async def test_no_filter_lists_the_tenants_jobs_newest_first(fx: Fixture) -> None:
    assert await listed(fx) == ["a7", "a6", "a5", "a4", "a3", "a2", "a1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "completed"}, ["a7", "a6", "a3", "a1"]),
        ({"status": "failed"}, ["a2"]),
        ({"model": "whisper-large-v3"}, ["a7", "a6", "a2", "a1"]),
        ({"model": "parakeet-tdt-0.6b-v2"}, ["a4", "a3"]),
        ({"model": "no-such-model"}, []),
        ({"speaker_detection": "diarize"}, ["a6", "a3", "a2"]),
        ({"speaker_detection": "per_channel"}, ["a4"]),
        ({"speaker_detection": "none"}, ["a7", "a5", "a1"]),
        ({"created_after": iso(T0 + timedelta(hours=2))}, ["a7", "a6", "a5", "a4", "a3"]),  # inclusive
        ({"created_before": iso(T0 + timedelta(hours=2))}, ["a2", "a1"]),  # exclusive
        ({"created_after": iso(T0 + timedelta(hours=1)), "created_before": iso(T0 + timedelta(hours=3))}, ["a3", "a2"]),
        # Any UTC offset: 18:00+02:00 is T0 + 4 h.
        ({"created_after": "2026-09-01T18:00:00+02:00"}, ["a7", "a6", "a5"]),
        ({"q": "meeting"}, ["a3", "a1"]),
        ({"q": "BOARD-MEETING"}, ["a3", "a1"]),  # case-insensitive
        ({"q": "  call  "}, ["a6", "a2"]),  # trimmed
        ({"q": "zzz"}, []),
        ({"q": ""}, ["a7", "a6", "a5", "a4", "a3", "a2", "a1"]),  # an empty search filters nothing
    ],
)
async def test_each_filter(fx: Fixture, params: dict[str, str], expected: list[str]) -> None:
    assert await listed(fx, **params) == expected


async def test_search_matches_like_wildcards_literally(fx: Fixture) -> None:
    # % and _ are LIKE wildcards: a search for them must find only names that contain them.
    assert await listed(fx, q="%") == ["a5"]
    assert await listed(fx, q="100%_") == ["a5"]
    assert await listed(fx, q="_") == ["a5", "a2"]  # "100%_done", "call_center_01"
    assert await listed(fx, q="\\") == []


async def test_filters_combine(fx: Fixture) -> None:
    assert await listed(fx, status="completed", model="whisper-large-v3") == ["a7", "a6", "a1"]
    assert await listed(fx, status="completed", speaker_detection="diarize", q="center") == ["a6"]
    assert await listed(fx, model="whisper-large-v3", created_before=iso(T0 + timedelta(hours=5))) == ["a2", "a1"]
    assert await listed(fx, status="failed", model="parakeet-tdt-0.6b-v2") == []


async def test_pages_of_a_filtered_list(fx: Fixture) -> None:
    first = (await fx.client.get(URL, params={"model": "whisper-large-v3", "limit": 3})).json()
    assert [j["id"] for j in first["jobs"]] == [fx.ids[x] for x in ("a7", "a6", "a2")]
    assert first["has_more"] is True
    second = (await fx.client.get(URL, params={"model": "whisper-large-v3", "limit": 3, "cursor": first["next_cursor"]})).json()
    assert [j["id"] for j in second["jobs"]] == [fx.ids["a1"]]
    assert second["has_more"] is False and second["next_cursor"] is None

    # A page that exactly fills: no phantom next page.
    exact = (await fx.client.get(URL, params={"speaker_detection": "diarize", "limit": 3})).json()
    assert len(exact["jobs"]) == 3 and exact["has_more"] is False

    # A cursor from one filter set applied with another continues from the same position.
    other = await listed(fx, status="completed", cursor=first["next_cursor"])
    assert other == ["a1"]


async def test_other_tenants_jobs_never_match(fx: Fixture) -> None:
    # beta's "board-meeting-beta.wav" matches the search and the model, but is not alpha's.
    assert "beta-1" not in await listed(fx, q="board")
    assert "beta-1" not in await listed(fx, model="whisper-large-v3", speaker_detection="diarize")
    beta = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fx.app), base_url="http://gateway", headers={"Authorization": f"Bearer {fx.beta_key}"}
    )
    async with beta:
        assert await listed(fx, beta, q="meeting") == ["beta-1"]
        assert await listed(fx, beta, status="failed") == []


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"status": "done"}, "status"),
        ({"speaker_detection": "everyone"}, "speaker_detection"),
        ({"model": "   "}, "model"),
        ({"model": "m" * 201}, "model"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-09-01T12:00:00"}, "created_after"),  # naive: which zone?
        ({"created_before": "2026-13-01T00:00:00Z"}, "created_before"),
        ({"created_after": "2026-09-02T00:00:00Z", "created_before": "2026-09-01T00:00:00Z"}, "created_after"),
        ({"created_after": "2026-09-01T00:00:00Z", "created_before": "2026-09-01T00:00:00Z"}, "created_after"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_bad_values_are_400_in_the_native_shape(fx: Fixture, params: dict[str, str], mentions: str) -> None:
    response = await fx.client.get(URL, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] in ("invalid_parameter", "invalid_cursor"), body
    assert mentions in body["error"]["message"], body


async def test_the_filters_have_their_indexes(fx: Fixture) -> None:
    """Migration 0008's indexes exist and the filename search can use the trigram one.

    (Which plan the planner picks for 8 rows says nothing; bench/jobs_list.py shows the
    plans with 100 000.)"""
    async with fx.services.sessionmaker() as db:
        names = set(await db.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'jobs'")))
        assert {
            "ix_jobs_tenant_created",
            "ix_jobs_tenant_status_created",
            "ix_jobs_tenant_model_created",
            "ix_jobs_tenant_speakers_created",
            "ix_jobs_filename_trgm",
        } <= names
        # With sequential scans priced out, the ILIKE search must be able to read the GIN index.
        await db.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(await db.scalars(text("EXPLAIN SELECT id FROM jobs WHERE audio_filename ILIKE :p"), {"p": "%meeting%"}))
        assert "ix_jobs_filename_trgm" in plan, plan
