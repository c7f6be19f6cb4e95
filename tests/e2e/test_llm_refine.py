"""The refine stage through the whole fleet: a job with `llm_cleanup=true` on a fleet whose
DALSTON_LLM_BASE_URL points at a real local model (SmolLM2-135M on llama.cpp, see
tests/llm_server) runs prepare → transcribe → refine → merge, and the stored transcript is
the refined one: every word the transcriber heard keeps a real time, anything the model
added is flagged, and the refine stage is recorded. Cleanup quality is not asserted: a
135M model barely changes the text (measured in tests/integration/test_llm_cleanup.py).

The same fleet runs the emotions and events engines with model settings that point nowhere
(no trained weights can be had here): optional stages that fail leave a completed job whose
transcript says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import RunningFleet, start_fleet, submit, wait_for
from support import FIXTURES, llm_server

from dalston.fleet import engine_service

pytestmark = pytest.mark.e2e
REDIS_DB = 12  # beside the default e2e fleets (8, 9) and the other module fleets


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    with llm_server() as url:
        missing = tmp_path_factory.mktemp("no-weights")
        env = {
            "DALSTON_LLM_BASE_URL": url,
            "DALSTON_LLM_MODEL": "smollm2-135m",
            "DALSTON_EMOTION_MODEL": str(missing / "emotion2vec"),
            "DALSTON_EVENTS_MODEL": str(missing / "panns"),
        }
        for running in start_fleet("fs", tmp_path_factory.mktemp("fleet-llm"), env, redis_db=REDIS_DB):
            # What `dalston up` starts once these settings are set (dalston.fleet.configured_engines).
            for engine_id in ("llm-cleanup", "emotion2vec", "panns-events"):
                running.fleet.add(engine_service(engine_id))
            yield running


def test_a_job_with_llm_cleanup_runs_the_refine_stage(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "speech_en.wav", llm_cleanup="true", no_verbatim="true")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    stages = {s["name"]: s for s in job["stages"]}
    assert stages["refine"]["status"] == "completed", stages["refine"]
    assert stages["refine"]["engine_id"] == "llm-cleanup"
    transcript = job["transcript"]
    refine = [s for s in transcript["stages"] if s["stage"] == "refine"]
    assert refine and refine[0]["engine_id"] == "llm-cleanup", transcript["stages"]
    assert not transcript["warnings"], transcript["warnings"]

    words = transcript["words"]
    heard = [w for w in words if not w.get("generated")]
    assert len(heard) >= 20, words
    # The transcriber's words keep their own, increasing times; the model's additions are zero-length.
    assert all(w["end"] > w["start"] for w in heard)
    assert [w["start"] for w in heard] == sorted(w["start"] for w in heard)
    assert all(w["start"] == w["end"] for w in words if w.get("generated"))
    # The text is the (refined) segments' text.
    assert transcript["text"] == " ".join(s["text"].strip() for s in transcript["segments"] if s["text"].strip())


def test_failing_optional_enrichment_stages_leave_a_completed_job_with_warnings(fleet: RunningFleet) -> None:
    with fleet.client() as client:
        created = submit(client, FIXTURES / "speech_en.wav", detect_emotions="true", detect_events="true")
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    stages = {s["name"]: s for s in job["stages"]}
    assert stages["emotions"]["status"] == stages["events"]["status"] == "failed", stages
    transcript = job["transcript"]
    assert transcript["text"] and transcript["audio_events"] is None
    assert all(s["emotion"] is None for s in transcript["segments"])
    warnings = sorted(transcript["warnings"])
    assert len(warnings) == 2 and job["warnings"] == transcript["warnings"], warnings
    assert warnings[0].startswith("emotions (emotion2vec) failed") and "is not an emotion2vec+ model directory" in warnings[0]
    assert warnings[1].startswith("events (panns-events) failed") and "DALSTON_EVENTS_MODEL" in warnings[1]
