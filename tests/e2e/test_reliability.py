"""Failure, concurrency and lifecycle behaviour of the whole fleet (filesystem backend)."""

from __future__ import annotations

import concurrent.futures
import json
import random
import time
from pathlib import Path

import pytest
import redis
from harness import RunningFleet, reference, submit, wait_for, wait_for_stage, wer
from support import FIXTURES

from dalston.fleet import engine_service
from shared import keys

pytestmark = pytest.mark.e2e


def _redis(fleet: RunningFleet) -> redis.Redis:
    return redis.Redis.from_url(fleet.env["DALSTON_REDIS_URL"], decode_responses=True)


def _task_messages(r: redis.Redis, engine_id: str, job_id: str) -> dict[str, str]:
    """Stream message id -> task id of this job's tasks on an engine's stream."""
    found = {}
    for msg_id, fields in r.xrange(keys.engine_stream(engine_id)):
        task = json.loads(fields["data"])
        if task["job_id"] == job_id:
            found[msg_id] = task["task_id"]
    return found


def _holders(r: redis.Redis, engine_id: str, message_ids: set[str]) -> list[tuple[str, int]]:
    """(consumer, times delivered) of each of these messages still pending (unacked)."""
    pending = r.xpending_range(keys.engine_stream(engine_id), keys.ENGINE_GROUP, min="-", max="+", count=1000)
    return [(p["consumer"], int(p["times_delivered"])) for p in pending if p["message_id"] in message_ids]


def _events(r: redis.Redis, job_id: str) -> list[dict]:
    events = [json.loads(fields["data"]) for _, fields in r.xrange(keys.EVENTS_STREAM)]
    return [e for e in events if e.get("job_id") == job_id]


def _wait(check, what: str, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what} (gave up after {timeout:.0f} s)"
        time.sleep(0.05)
    return found


def test_killed_engine_task_is_redelivered(fleet: RunningFleet) -> None:
    """The proof is in Redis: the transcribe message held (delivered once) by the killed
    engine's consumer is then held by another consumer with a delivery count of 2, and the
    task was started twice without an orchestrator retry (attempt stays 0)."""
    r = _redis(fleet)
    with fleet.client() as client:
        # ~54 s of speech keeps the engine busy for a few seconds: time to kill it mid-task.
        job_id = submit(client, FIXTURES / "long_en.wav").json()["id"]
        wait_for_stage(client, job_id, "transcribe", "running")
        messages = _task_messages(r, "faster-whisper", job_id)
        assert len(messages) == 1, messages
        [(killed_consumer, delivered)] = _holders(r, "faster-whisper", set(messages))
        assert delivered == 1
        fleet.fleet.kill("engine-faster-whisper")  # SIGKILL while it holds the task
        fleet.fleet.add(engine_service("faster-whisper", name="engine-faster-whisper-2"))
        [(new_consumer, redelivered)] = _wait(
            lambda: [h for h in _holders(r, "faster-whisper", set(messages)) if h[0] != killed_consumer],
            "another consumer took the killed engine's task",
        )
        assert redelivered == 2, (new_consumer, redelivered)
        job = wait_for(client, job_id, timeout=240)
        assert job["status"] == "completed", job
        transcribe = next(s for s in job["stages"] if s["name"] == "transcribe")
        assert transcribe["status"] == "completed" and transcribe["attempt"] == 0
        [task_id] = messages.values()
        started = [e for e in _events(r, job_id) if e["type"] == "task.started" and e["task_id"] == task_id]
        assert len(started) == 2, started
        assert _holders(r, "faster-whisper", set(messages)) == []  # acked once done
        text = job["transcript"]["text"]
        assert wer(reference("long_en.txt"), text) <= 0.30
        # No job is left behind in a non-terminal state.
        running = client.get("/v1/audio/transcriptions", params={"status": "running"}).json()["jobs"]
        pending = client.get("/v1/audio/transcriptions", params={"status": "pending"}).json()["jobs"]
        assert running == [] and pending == []


def _bad_inputs(tmp_path: Path) -> list[tuple[str, dict, int]]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.wav"
    noise.write_bytes(random.Random(1).randbytes(20_000))
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio, only text pretending to be a wav file\n" * 20)
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes((FIXTURES / "speech_en.mp3").read_bytes()[:400])
    return [
        ("empty file", {"files": {"file": ("empty.wav", empty.read_bytes())}}, 400),
        ("random bytes", {"files": {"file": ("noise.wav", noise.read_bytes())}}, 400),
        ("text named .wav", {"files": {"file": ("notes.wav", text.read_bytes())}}, 400),
        ("truncated mp3", {"files": {"file": ("truncated.mp3", truncated.read_bytes())}}, 400),
        ("missing file field", {"data": {"language": "en"}, "files": {"other": ("x.txt", b"x")}}, 400),
        (
            "unknown model",
            {"files": {"file": ("a.wav", (FIXTURES / "short_en.wav").read_bytes())}, "data": {"model": "nope"}},
            400,
        ),
    ]


def test_bad_input_gets_clear_4xx(fleet: RunningFleet, tmp_path: Path) -> None:
    with fleet.client() as client:
        for label, kwargs, status in _bad_inputs(tmp_path):
            response = client.post("/v1/audio/transcriptions", **kwargs)
            assert response.status_code == status, (label, response.status_code, response.text)
            error = response.json()["error"]
            assert error["code"] and error["message"], label

        unknown = client.get("/v1/audio/transcriptions/00000000-0000-0000-0000-000000000000")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "job_not_found"

    with fleet.client(key="dk_wrong") as client:
        denied = client.get("/v1/audio/transcriptions")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"

    # The server keeps serving after all of that.
    with fleet.client() as client:
        job_id = submit(client, FIXTURES / "short_en.wav").json()["id"]
        assert wait_for(client, job_id)["status"] == "completed"


def test_fifty_concurrent_jobs_all_complete(fleet: RunningFleet) -> None:
    audio = (FIXTURES / "short_en.wav").read_bytes()

    def one(_: int) -> str:
        with fleet.client() as client:
            response = client.post("/v1/audio/transcriptions", files={"file": ("short.wav", audio)})
            assert response.status_code == 201, response.text
            return response.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(one, range(50)))
    assert len(set(ids)) == 50

    with fleet.client() as client:
        jobs = [wait_for(client, job_id, timeout=300) for job_id in ids]
        assert [j["status"] for j in jobs] == ["completed"] * 50
        for job in jobs:
            assert wer(reference("short_en.txt"), job["transcript"]["text"]) <= 0.30
            assert [s["attempt"] for s in job["stages"]] == [0, 0, 0], "no task should need a retry"

        # Every job is listed exactly once.
        seen, cursor = [], None
        while True:
            page = client.get("/v1/audio/transcriptions", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            seen += [j["id"] for j in page["jobs"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen)) and set(ids) <= set(seen)


def test_cancel_queued_job(fleet: RunningFleet) -> None:
    fleet.fleet.kill("engine-prepare")  # nothing takes prepare tasks: the job stays queued
    try:
        with fleet.client() as client:
            job_id = submit(client, FIXTURES / "short_en.wav").json()["id"]
            wait_for_stage(client, job_id, "prepare", "ready")
            cancelled = client.post(f"/v1/audio/transcriptions/{job_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
    finally:
        fleet.fleet.restart("engine-prepare")

    r = _redis(fleet)
    [message_id] = _task_messages(r, "prepare", job_id)

    def consumed() -> bool:  # delivered to the group and acked
        group = next(g for g in r.xinfo_groups(keys.engine_stream("prepare")) if g["name"] == keys.ENGINE_GROUP)
        delivered = tuple(map(int, group["last-delivered-id"].split("-"))) >= tuple(map(int, message_id.split("-")))
        return delivered and not _holders(r, "prepare", {message_id})

    # The restarted engine reads the queued task, sees the cancellation and acks it unrun:
    # it logs the skip, and no task.started was ever published for the job.
    _wait(consumed, "the restarted prepare engine took the cancelled job's task off its stream", timeout=120)
    _wait(
        lambda: any("task_skipped_job_cancelled" in line and job_id in line for line in fleet.fleet.tail("engine-prepare", 1000)),
        "the restarted prepare engine logged that it skipped the task",
        timeout=30,
    )
    assert not [e for e in _events(r, job_id) if e["type"] == "task.started"]
    with fleet.client() as client:
        job = client.get(f"/v1/audio/transcriptions/{job_id}").json()
        assert job["status"] == "cancelled" and job["transcript"] is None
        assert {s["status"] for s in job["stages"]} == {"skipped"}
        assert client.post(f"/v1/audio/transcriptions/{job_id}/cancel").status_code == 200  # idempotent


def test_delete_finished_job_removes_everything(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        job_id = submit(client, FIXTURES / "short_en.wav").json()["id"]
        job = wait_for(client, job_id)
        assert job["status"] == "completed"
        stored = fleet.data_dir / "storage" / "jobs" / job_id
        assert any(p.is_file() for p in stored.rglob("*"))

        assert client.delete(f"/v1/audio/transcriptions/{job_id}").status_code == 204
        assert client.get(f"/v1/audio/transcriptions/{job_id}").status_code == 404
        assert not stored.exists()
        assert client.delete(f"/v1/audio/transcriptions/{job_id}").status_code == 404


def test_delete_running_job_is_refused(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        job_id = submit(client, FIXTURES / "long_en.wav").json()["id"]
        refused = client.delete(f"/v1/audio/transcriptions/{job_id}")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "job_not_terminal"
        assert wait_for(client, job_id)["status"] == "completed"
