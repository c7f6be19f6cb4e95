"""Failure, concurrency and lifecycle behaviour of the whole fleet (filesystem backend)."""

from __future__ import annotations

import concurrent.futures
import random
import time
from pathlib import Path

import pytest
from harness import RunningFleet, reference, submit, wait_for, wait_for_stage, wer
from support import FIXTURES

from dalston.fleet import engine_service

pytestmark = pytest.mark.e2e


def test_killed_engine_task_is_redelivered(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        # ~54 s of speech keeps the engine busy for a few seconds: time to kill it mid-task.
        job_id = submit(client, FIXTURES / "long_en.wav").json()["id"]
        wait_for_stage(client, job_id, "transcribe", "running")
        fleet.fleet.kill("engine-faster-whisper")  # SIGKILL while it holds the task
        fleet.fleet.add(engine_service("faster-whisper", name="engine-faster-whisper-2"))
        job = wait_for(client, job_id, timeout=240)
        assert job["status"] == "completed", job
        transcribe = next(s for s in job["stages"] if s["name"] == "transcribe")
        assert transcribe["status"] == "completed"
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

    with fleet.client() as client:
        # The restarted engine finds the queued task, sees the cancellation and skips it.
        time.sleep(3)
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
