"""DAG shapes for speaker detection: diarize beside transcribe, optional align, per_channel, integrated."""

import pytest

from orchestrator import dag
from orchestrator.dag import DagError, JobSpec, TaskNode, build_dag


def by_name(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    return {n.name: n for n in nodes}


def test_diarize_runs_beside_transcribe_and_both_feed_merge() -> None:
    spec = JobSpec(model="tiny.en", speaker_detection="diarize", parameters={"diarize": {"num_speakers": 2}})
    nodes = by_name(build_dag(spec))
    assert list(nodes) == ["prepare", "transcribe", "diarize", "merge"]
    # Parallel: both depend only on prepare.
    assert nodes["transcribe"].depends_on == ("prepare",)
    assert nodes["diarize"].depends_on == ("prepare",)
    assert nodes["diarize"].engine_id == "diarize-default"
    assert nodes["diarize"].config == {"num_speakers": 2}
    assert nodes["diarize"].required
    assert nodes["merge"].depends_on == ("prepare", "transcribe", "diarize")


def test_align_is_scheduled_only_when_asked_and_is_optional() -> None:
    without = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection="diarize")))
    assert "align" not in without  # faster-whisper has word timestamps
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection="diarize", parameters={"align": True})))
    assert nodes["align"].depends_on == ("prepare", "transcribe")
    assert nodes["align"].engine_id == "phoneme-align"
    assert nodes["align"].required is False
    assert "align" in nodes["merge"].depends_on and "diarize" in nodes["merge"].depends_on


def test_align_is_scheduled_when_the_transcriber_has_no_word_timestamps(monkeypatch) -> None:
    monkeypatch.setattr(dag, "WITHOUT_WORD_TIMESTAMPS", frozenset({"words-less"}))
    nodes = by_name(build_dag(JobSpec(model="m", speaker_detection="diarize", engines={"transcribe": "words-less"})))
    assert nodes["align"].depends_on == ("prepare", "transcribe")


def test_diarize_engine_override() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection="diarize", engines={"diarize": "pyannote-4.0"})))
    assert nodes["diarize"].engine_id == "pyannote-4.0"


def test_per_channel_has_no_diarizer() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection="per_channel", channels=2)))
    assert list(nodes) == ["prepare", "transcribe_ch0", "transcribe_ch1", "merge"]
    assert nodes["merge"].depends_on == ("prepare", "transcribe_ch0", "transcribe_ch1")


def test_integrated_engine_replaces_the_modular_chain() -> None:
    spec = JobSpec(
        model="tiny.en",
        speaker_detection="diarize",
        engines={"transcribe": "whisperx-full"},
        parameters={"diarize": {"max_speakers": 3}},
    )
    nodes = by_name(build_dag(spec))
    assert list(nodes) == ["prepare", "whisperx", "merge"]
    assert nodes["whisperx"].engine_id == "whisperx-full"
    assert nodes["whisperx"].config["diarize"] is True and nodes["whisperx"].config["speakers"] == {"max_speakers": 3}
    assert nodes["merge"].depends_on == ("prepare", "whisperx")


def test_integrated_engine_cannot_do_per_channel() -> None:
    with pytest.raises(DagError, match="per_channel"):
        build_dag(JobSpec(model="tiny.en", speaker_detection="per_channel", channels=2, engines={"transcribe": "whisperx-full"}))
