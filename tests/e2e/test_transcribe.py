"""Real speech through gateway → orchestrator → engines, on both storage backends."""

from __future__ import annotations

import pytest
from harness import RunningFleet, reference, submit, wait_for, wer
from support import FIXTURES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("fixture", ["speech_en.wav", "speech_en.mp3", "speech_en.ogg"])
def test_transcribes_speech(any_fleet: RunningFleet, fixture: str) -> None:
    with any_fleet.client() as client:
        created = submit(client, FIXTURES / fixture)
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"])

    assert job["status"] == "completed", job
    assert job["progress"] == 1.0
    assert [s["name"] for s in job["stages"]] == ["prepare", "transcribe", "merge"]
    for stage in job["stages"]:
        assert stage["status"] == "completed" and stage["duration_ms"] is not None and stage["duration_ms"] >= 0

    transcript = job["transcript"]
    duration = transcript["duration"]
    assert duration == pytest.approx(11.9, abs=0.1)
    score = wer(reference("speech_en.txt"), transcript["text"])
    assert score <= 0.30, f"WER {score:.2f} on {fixture} ({any_fleet.backend}): {transcript['text']!r}"

    assert transcript["language"] == "en"
    assert transcript["language_probability"] is not None and 0 < transcript["language_probability"] <= 1

    words = transcript["words"]
    assert len(words) >= 20
    starts = [w["start"] for w in words]
    assert starts == sorted(starts), "word start times must be monotonic"
    for w in words:
        assert 0 <= w["start"] <= w["end"] <= duration + 0.05, w
        assert w["probability"] is not None and 0 <= w["probability"] <= 1
    for segment in transcript["segments"]:
        assert segment["avg_logprob"] is not None and segment["no_speech_prob"] is not None
