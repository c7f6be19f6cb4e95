"""DAG shapes for speaker detection: diarize beside transcribe, optional align, per_channel, integrated."""

import pytest

from orchestrator.dag import DagError, JobSpec, TaskNode, build_dag
from shared import catalogue
from shared.catalogue import SpeakerDetection, Stage
from shared.contracts import DiarizeConfig, IntegratedConfig, JobParameters, SpeakerOptions

DIARIZE = SpeakerDetection.DIARIZE


def by_name(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    return {n.name: n for n in nodes}


def test_diarize_runs_beside_transcribe_and_both_feed_merge() -> None:
    spec = JobSpec(model="tiny.en", speaker_detection=DIARIZE, parameters=JobParameters(diarize=SpeakerOptions(num_speakers=2)))
    nodes = by_name(build_dag(spec))
    assert list(nodes) == ["prepare", "transcribe", "diarize", "merge"]
    # Parallel: both depend only on prepare.
    assert nodes["transcribe"].depends_on == ("prepare",)
    assert nodes["diarize"].depends_on == ("prepare",)
    assert nodes["diarize"].engine_id == "diarize-default"
    assert nodes["diarize"].config == DiarizeConfig(num_speakers=2)
    assert nodes["diarize"].required
    assert nodes["merge"].depends_on == ("prepare", "transcribe", "diarize")


def test_align_is_scheduled_only_when_asked_and_is_optional() -> None:
    without = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=DIARIZE)))
    assert "align" not in without  # faster-whisper has word timestamps
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=DIARIZE, parameters=JobParameters(align=True))))
    assert nodes["align"].depends_on == ("prepare", "transcribe")
    assert nodes["align"].engine_id == "phoneme-align"
    assert nodes["align"].required is False
    assert "align" in nodes["merge"].depends_on and "diarize" in nodes["merge"].depends_on


def test_align_is_scheduled_when_the_transcriber_has_no_word_timestamps(monkeypatch) -> None:
    words_less = catalogue.EngineInfo("words-less", Stage.TRANSCRIBE, "engines.x:X", "no word timestamps")
    monkeypatch.setitem(catalogue.ENGINES, "words-less", words_less)
    spec = JobSpec(model="m", speaker_detection=DIARIZE, parameters=JobParameters(engines={Stage.TRANSCRIBE: "words-less"}))
    nodes = by_name(build_dag(spec))
    assert nodes["align"].depends_on == ("prepare", "transcribe")


def test_diarize_engine_override() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=DIARIZE, stage_engines={Stage.DIARIZE: "pyannote-4.0"})))
    assert nodes["diarize"].engine_id == "pyannote-4.0"


def test_per_channel_has_no_diarizer() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.PER_CHANNEL, channels=2)))
    assert list(nodes) == ["prepare", "transcribe_ch0", "transcribe_ch1", "merge"]
    assert nodes["merge"].depends_on == ("prepare", "transcribe_ch0", "transcribe_ch1")


def test_integrated_engine_replaces_the_modular_chain() -> None:
    spec = JobSpec(
        model="tiny.en",
        speaker_detection=DIARIZE,
        parameters=JobParameters(engines={Stage.TRANSCRIBE: "whisperx-full"}, diarize=SpeakerOptions(max_speakers=3)),
    )
    nodes = by_name(build_dag(spec))
    assert list(nodes) == ["prepare", "whisperx", "merge"]
    assert nodes["whisperx"].engine_id == "whisperx-full"
    config = nodes["whisperx"].config
    assert isinstance(config, IntegratedConfig) and config.diarize == DiarizeConfig(max_speakers=3)
    assert nodes["merge"].depends_on == ("prepare", "whisperx")


def test_integrated_engine_cannot_do_per_channel() -> None:
    with pytest.raises(DagError, match="per_channel"):
        parameters = JobParameters(engines={Stage.TRANSCRIBE: "whisperx-full"})
        build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.PER_CHANNEL, channels=2, parameters=parameters))
