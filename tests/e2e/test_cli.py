"""The `dalston` client commands, run as a person runs them (`python -m dalston ...` in a
subprocess), against the whole fleet."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness import API_KEY, ROOT, RunningFleet, reference, wer
from support import FIXTURES, free_port

from dalston.client import Exit

pytestmark = pytest.mark.e2e

WER_BOUND = 0.35
TIMEOUT_S = 300


def cli_env(fleet: RunningFleet, key: str) -> dict[str, str]:
    # The fleet's own DALSTON_* settings must not leak into the client.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DALSTON_")}
    return env | {"DALSTON_SERVER": fleet.base_url, "DALSTON_API_KEY": key}


def dalston(fleet: RunningFleet, *args: str, key: str = API_KEY, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dalston", *args],
        env=cli_env(fleet, key),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dalston: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def srt_text(srt: str) -> str:
    cues = [line for line in srt.splitlines() if line.strip() and not line.strip().isdigit() and "-->" not in line]
    return " ".join(cues)


def test_transcribe_prints_srt(fleet: RunningFleet) -> None:
    result = dalston(fleet, "transcribe", str(FIXTURES / "speech_en.wav"), "--format", "srt")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^00:00:0\d,\d{3} --> 00:00:\d\d,\d{3}$", result.stdout, re.M), result.stdout
    score = wer(reference("speech_en.txt"), srt_text(result.stdout))
    assert score <= WER_BOUND, f"WER {score:.2f}: {result.stdout!r}"
    assert "prepare ✓ transcribe ✓ merge ✓" in result.stderr  # the stages, as the progress display left them


def test_transcribe_two_files_at_once(fleet: RunningFleet, tmp_path: Path) -> None:
    files = [FIXTURES / "speech_en.wav", FIXTURES / "short_en.wav"]
    result = dalston(fleet, "transcribe", *map(str, files), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    for path in files:
        text = (tmp_path / f"{path.stem}.txt").read_text()
        score = wer(reference(f"{path.stem}.txt"), text)
        assert score <= WER_BOUND, f"WER {score:.2f} on {path.name}: {text!r}"
    with fleet.client() as client:
        jobs = client.get("/v1/audio/transcriptions", params={"limit": 2}).json()["jobs"]
        details = [client.get(f"/v1/audio/transcriptions/{j['id']}").json() for j in jobs]
    assert {d["audio"]["filename"] for d in details} == {p.name for p in files}
    # At once: both jobs existed before either finished.
    assert max(d["created_at"] for d in details) < min(d["completed_at"] for d in details)


def wait_completed(fleet: RunningFleet, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        shown = dalston(fleet, "jobs", "show", job_id, "--json")
        assert shown.returncode == 0, shown.stderr
        job: dict[str, Any] = json.loads(shown.stdout)
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def test_no_wait_then_jobs_show_and_export(fleet: RunningFleet, tmp_path: Path) -> None:
    submitted = dalston(fleet, "transcribe", "--no-wait", str(FIXTURES / "speech_en.wav"))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert uuid.UUID(job_id)

    job = wait_completed(fleet, job_id)
    assert job["status"] == "completed", job
    shown = dalston(fleet, "jobs", "show", job_id)
    assert shown.returncode == 0, shown.stderr
    assert job_id in shown.stdout and "completed" in shown.stdout
    assert wer(reference("speech_en.txt"), shown.stdout.strip().splitlines()[-1]) <= WER_BOUND, shown.stdout

    listed = dalston(fleet, "jobs", "ls", "--json")
    assert job_id in [j["id"] for j in json.loads(listed.stdout)["jobs"]]
    vtt = dalston(fleet, "jobs", "export", job_id, "--format", "vtt")
    assert vtt.returncode == 0 and vtt.stdout.startswith("WEBVTT"), vtt.stderr
    pdf = dalston(fleet, "jobs", "export", job_id, "--format", "pdf", "--out", str(tmp_path))
    assert pdf.returncode == 0, pdf.stderr
    assert (tmp_path / f"transcript-{job_id}.pdf").read_bytes().startswith(b"%PDF")

    removed = dalston(fleet, "jobs", "rm", job_id)
    assert removed.returncode == 0, removed.stderr
    assert dalston(fleet, "jobs", "show", job_id).returncode == Exit.NOT_FOUND


def test_listen_file_prints_finals(fleet: RunningFleet) -> None:
    result = dalston(fleet, "listen", "--file", str(FIXTURES / "speech_en.wav"))
    assert result.returncode == 0, result.stderr
    finals = result.stdout.strip().splitlines()
    assert finals, result.stderr
    score = wer(reference("speech_en.txt"), " ".join(finals))
    assert score <= WER_BOUND, f"WER {score:.2f}: {finals!r}"
    session_id = re.search(r"session ([0-9a-f-]{36})", result.stderr)
    assert session_id, result.stderr
    sessions = dalston(fleet, "sessions", "ls", "--json")
    assert session_id.group(1) in [s["id"] for s in json.loads(sessions.stdout)["sessions"]]


def test_ctrl_c_cancels_the_submitted_job(fleet: RunningFleet, tmp_path: Path) -> None:
    audio = tmp_path / f"ctrl-c-{uuid.uuid4().hex[:8]}.wav"
    shutil.copy(FIXTURES / "long_en.wav", audio)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dalston", "transcribe", str(audio)],
        env=cli_env(fleet, API_KEY),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,  # no terminal to ask: the jobs are cancelled
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with fleet.client() as client:
            deadline = time.monotonic() + 60
            while not (jobs := client.get("/v1/audio/transcriptions", params={"q": audio.name}).json()["jobs"]):
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == Exit.INTERRUPTED, stderr
            assert f"cancelled {jobs[0]['id']}" in stderr
            assert client.get(f"/v1/audio/transcriptions/{jobs[0]['id']}").json()["status"] == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_shows_readiness_realtime_and_engines(fleet: RunningFleet) -> None:
    result = dalston(fleet, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["ready"]["status"] == "ready"
    assert status["realtime"]["workers"], status["realtime"]
    assert any(e["engine_id"] == "faster-whisper" and e["instances"] for e in status["engines"]["engines"])


def test_keys_create_use_and_revoke(fleet: RunningFleet) -> None:
    created = dalston(fleet, "keys", "create", "cli-test", "--scope", "jobs:read", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert dalston(fleet, "jobs", "ls", key=key["key"]).returncode == 0
    refused = dalston(fleet, "keys", "ls", key=key["key"])  # jobs:read is not admin
    assert refused.returncode == Exit.AUTH and "admin" in one_error_line(refused)
    assert dalston(fleet, "keys", "revoke", key["id"]).returncode == 0
    assert dalston(fleet, "jobs", "ls", key=key["key"]).returncode == Exit.AUTH


# -- failures: one clear line and an exit code ------------------------------------------


def test_wrong_key(fleet: RunningFleet) -> None:
    for args in (
        ["jobs", "ls"],
        ["transcribe", str(FIXTURES / "short_en.wav")],
        ["listen", "--file", str(FIXTURES / "short_en.wav")],
    ):
        result = dalston(fleet, *args, key="dk_wrong_" + uuid.uuid4().hex)
        assert result.returncode == Exit.AUTH, (args, result.stderr)
        assert "invalid" in one_error_line(result), args


def test_unknown_job(fleet: RunningFleet) -> None:
    missing = str(uuid.uuid4())
    for args in (["jobs", "show", missing], ["jobs", "export", missing], ["jobs", "cancel", missing]):
        result = dalston(fleet, *args)
        assert result.returncode == Exit.NOT_FOUND, (args, result.stderr)
        assert missing in one_error_line(result)


def test_unreachable_server(fleet: RunningFleet) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["jobs", "ls"],
        ["transcribe", str(FIXTURES / "short_en.wav")],
        ["listen", "--file", str(FIXTURES / "short_en.wav")],
    ):
        result = dalston(fleet, *args, "--server", server)
        assert result.returncode == Exit.UNREACHABLE, (args, result.stderr)
        assert server in one_error_line(result)
