"""Speaker detection end to end: diarize, per_channel, optional align, failing diarizer, whisperx-full."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from harness import RunningFleet, reference, start_fleet, submit, wait_for, wer
from support import FIXTURES

from dalston.fleet import engine_service

pytestmark = pytest.mark.e2e
pytest.importorskip("silero_vad", reason="speaker detection needs the 'diarize' extra")

REDIS_DB = 13
TURNS = json.loads((FIXTURES / "conversation_en.json").read_text())["turns"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    # Weights for pyannote and the aligner are configured but absent: those engines run
    # and fail for real, which is what the failure tests need.
    env = {"DALSTON_PYANNOTE_MODEL": "/nonexistent/pyannote", "DALSTON_ALIGN_MODEL": "/nonexistent/wav2vec2"}
    for running in start_fleet("fs", tmp_path_factory.mktemp("fleet-speakers"), env, redis_db=REDIS_DB):
        for engine in ("pyannote-4.0", "phoneme-align", "whisperx-full"):
            running.fleet.add(engine_service(engine))
        # Engines load their models after the gateway answers: one job per pipeline first,
        # so the tests below see loaded engines (and concurrency is not hidden by a load).
        with running.client() as client:
            for fields in ({"speaker_detection": "diarize"}, {"speaker_detection": "diarize", "pipeline": "integrated"}):
                warm = submit(client, FIXTURES / "short_en.wav", **fields).json()["id"]
                assert wait_for(client, warm, timeout=300)["status"] == "completed"
        yield running


def truth_at(t: float) -> str:
    return min(TURNS, key=lambda turn: max(turn["start"] - t, t - turn["end"], 0.0))["speaker"]


def check_speakers(transcript: dict) -> None:
    assert len(transcript["speakers"]) == 2
    words = transcript["words"]
    assert words and all(w["speaker"] in transcript["speakers"] for w in words)
    # Map each predicted speaker to the true speaker of most of its words.
    votes: dict[tuple[str, str], int] = {}
    for w in words:
        key = (w["speaker"], truth_at((w["start"] + w["end"]) / 2))
        votes[key] = votes.get(key, 0) + 1
    mapping = {s: max(("A", "B"), key=lambda t: votes.get((s, t), 0)) for s in transcript["speakers"]}
    assert set(mapping.values()) == {"A", "B"}
    right = sum(mapping[w["speaker"]] == truth_at((w["start"] + w["end"]) / 2) for w in words)
    assert right / len(words) >= 0.9
    assert all(len({w["speaker"] for w in s["words"]}) <= 1 for s in transcript["segments"])
    assert wer(reference("conversation_en.txt"), transcript["text"]) <= 0.3


def span(stage: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(stage["started_at"]), datetime.fromisoformat(stage["completed_at"])


@pytest.mark.parametrize("fields", [{}, {"num_speakers": "2"}], ids=["automatic", "num_speakers=2"])
def test_diarize_runs_beside_transcribe_and_labels_words(fleet: RunningFleet, fields: dict) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "conversation_en.wav", speaker_detection="diarize", **fields)
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    stages = {s["name"]: s for s in job["stages"]}
    assert set(stages) == {"prepare", "transcribe", "diarize", "merge"}
    (t0, t1), (d0, d1) = span(stages["transcribe"]), span(stages["diarize"])
    assert t0 < d1 and d0 < t1, "transcribe and diarize did not run concurrently"
    check_speakers(job["transcript"])


def test_per_channel_labels_each_channel(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "stereo_voices_en.wav", speaker_detection="per_channel")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    transcript = job["transcript"]
    assert transcript["speakers"] == ["channel_0", "channel_1"]
    for channel, speaker in enumerate(("A", "B")):
        words = [w for w in transcript["words"] if w["channel"] == channel]
        assert words and all(w["speaker"] == f"channel_{channel}" for w in words)
        # Each word overlaps one of this channel's turns, give or take Whisper's timing error
        # (0.5 s: it starts the first word at 0 and stretches last words over silence).
        mine = [t for t in TURNS if t["speaker"] == speaker]
        wrong = [w for w in words if not any(w["start"] < t["end"] + 0.5 and t["start"] - 0.5 < w["end"] for t in mine)]
        assert not wrong, wrong
        text = " ".join(w["text"] for w in words)
        assert wer(reference(f"stereo_voices_en_ch{channel}.txt"), text) <= 0.3


def test_per_channel_on_mono_is_refused(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        response = submit(client, FIXTURES / "conversation_en.wav", speaker_detection="per_channel")
    assert response.status_code == 400 and "mono" in response.text


def test_bad_speaker_options_are_refused(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        for fields in (
            {"speaker_detection": "none", "num_speakers": "2"},
            {"speaker_detection": "diarize", "num_speakers": "0"},
            {"speaker_detection": "diarize", "num_speakers": "two"},
            {"speaker_detection": "diarize", "min_speakers": "3", "max_speakers": "2"},
            {"speaker_detection": "diarize", "diarization_threshold": "0.9"},
            {"speaker_detection": "diarize", "diarizer": "nope"},
        ):
            response = submit(client, FIXTURES / "short_en.wav", **fields)
            assert response.status_code == 400, (fields, response.text)
            assert response.json()["error"]["code"] in ("invalid_parameter",), response.text


def test_failing_aligner_leaves_a_warning(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "conversation_en.wav", speaker_detection="diarize", align="true")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    stages = {s["name"]: s for s in job["stages"]}
    assert stages["align"]["status"] == "failed" and "does not exist" in stages["align"]["error"]
    warnings = job["transcript"]["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("align (phoneme-align) failed")
    assert job["warnings"] == warnings  # the job response reports them too
    check_speakers(job["transcript"])


def test_failing_diarizer_fails_the_job_after_retries(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "short_en.wav", speaker_detection="diarize", diarizer="pyannote-4.0")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "failed", job
    assert "diarize (pyannote-4.0) failed" in job["error"] and "does not exist" in job["error"]
    stages = {s["name"]: s for s in job["stages"]}
    assert stages["diarize"]["attempt"] >= 1  # retried before giving up
    assert all(s["status"] in ("completed", "failed", "skipped") for s in job["stages"])


def test_integrated_pipeline_gives_the_same_transcript_shape(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "conversation_en.wav", speaker_detection="diarize", pipeline="integrated")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    assert [s["name"] for s in job["stages"]] == ["prepare", "whisperx", "merge"]
    check_speakers(job["transcript"])
    assert {s["stage"] for s in job["transcript"]["stages"]} == {"prepare", "transcribe", "diarize"}
