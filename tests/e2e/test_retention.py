"""Retention through the whole fleet: a job with retention=0 keeps its transcript but not
its audio; a job whose retention has run out is purged by the orchestrator's sweeper and
its row says when; a job kept forever is not touched; every purge is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from harness import RunningFleet, start_fleet, submit, wait_for
from support import FIXTURES

pytestmark = pytest.mark.e2e

REDIS_DB = 11  # the e2e modules run one after another; each fleet flushes its database


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    env = {"DALSTON_RECONCILE_INTERVAL_S": "2"}  # the purge sweeper runs on every pass
    yield from start_fleet("fs", tmp_path_factory.mktemp("fleet-retention"), env, redis_db=REDIS_DB)


def _wait_purged(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/audio/transcriptions/{job_id}").json()
        if job["purged_at"] is not None:
            return job
        assert time.monotonic() < deadline, f"job {job_id} never purged: {job}"
        time.sleep(0.5)


def _finished_days_ago(fleet: RunningFleet, job_ids: list[str], days: int) -> None:
    """Time passing, for the sweeper: the jobs finished `days` ago."""

    async def age() -> None:
        conn = await asyncpg.connect(fleet.env["DALSTON_DATABASE_URL"])
        try:
            await conn.execute(
                "UPDATE jobs SET completed_at = completed_at - make_interval(days => $2) WHERE id = ANY($1::uuid[])",
                job_ids,
                days,
            )
        finally:
            await conn.close()

    asyncio.run(age())


def test_retention_purges_audio_and_keeps_transcripts(fleet: RunningFleet) -> None:
    audio = FIXTURES / "short_en.wav"
    with fleet.client() as client:
        at_once = submit(client, audio, retention="0").json()["id"]
        expiring = submit(client, audio, retention="1").json()["id"]
        forever = submit(client, audio).json()["id"]  # the server's default: -1
        for job_id in (at_once, expiring, forever):
            assert wait_for(client, job_id)["status"] == "completed"

        purged = _wait_purged(client, at_once)
        assert purged["retention_days"] == 0 and "short test" in purged["transcript"]["text"].lower()
        gone = client.get(f"/v1/audio/transcriptions/{at_once}/audio")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "audio_not_found"
        assert "retention of 0 days" in gone.json()["error"]["message"]
        assert client.get(f"/v1/audio/transcriptions/{at_once}/export/srt").status_code == 200
        assert not (fleet.data_dir / "storage" / "jobs" / at_once / "audio").exists()

        assert client.get(f"/v1/audio/transcriptions/{expiring}/audio").status_code == 200  # a day to go
        _finished_days_ago(fleet, [expiring, forever], 2)
        expired = _wait_purged(client, expiring)
        assert expired["purged_at"] > expired["completed_at"] and expired["transcript"]["text"]
        assert client.get(f"/v1/audio/transcriptions/{expiring}/audio").status_code == 404

        time.sleep(4)  # two more sweeper passes
        assert client.get(f"/v1/audio/transcriptions/{forever}").json()["purged_at"] is None
        assert client.get(f"/v1/audio/transcriptions/{forever}/audio").status_code == 200

        audit = client.get("/v1/audit", params={"action": "job.purged", "limit": 50}).json()
        events = {e["resource_id"]: e for e in audit["events"]}
        assert set(events) == {at_once, expiring}, audit
        assert events[expiring]["details"]["retention_days"] == 1
