import pytest

from orchestrator.dag import DagError, JobSpec, TaskNode, build_dag, ready_nodes, validate
from shared.catalogue import SpeakerDetection, Stage
from shared.contracts import (
    DiarizeConfig,
    IntegratedConfig,
    JobParameters,
    MergeConfig,
    PrepareConfig,
    SpeakerOptions,
    TranscribeConfig,
    TranscribeOptions,
)

ANY = PrepareConfig()  # graph checks look at names and dependencies only


def node(name: str, *depends_on: str) -> TaskNode:
    return TaskNode(name, Stage.TRANSCRIBE, "faster-whisper", ANY, depends_on)


def by_name(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    return {n.name: n for n in nodes}


def test_none_is_prepare_transcribe_merge() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", language="en")))
    assert list(nodes) == ["prepare", "transcribe", "merge"]
    assert nodes["prepare"].depends_on == ()
    assert nodes["transcribe"].depends_on == ("prepare",)
    assert nodes["merge"].depends_on == ("prepare", "transcribe")
    assert [nodes[n].engine_id for n in nodes] == ["prepare", "faster-whisper", "merge"]
    assert nodes["transcribe"].config == TranscribeConfig(model="tiny.en", language="en")
    assert nodes["merge"].config == MergeConfig()


def test_per_channel_fans_out_one_transcriber_per_channel() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.PER_CHANNEL, channels=3)))
    transcribers = [n for n in nodes.values() if n.stage == "transcribe"]
    assert [t.name for t in transcribers] == ["transcribe_ch0", "transcribe_ch1", "transcribe_ch2"]
    assert all(t.depends_on == ("prepare",) for t in transcribers)
    assert [t.config.channel for t in transcribers if isinstance(t.config, TranscribeConfig)] == [0, 1, 2]
    assert nodes["merge"].depends_on == ("prepare", "transcribe_ch0", "transcribe_ch1", "transcribe_ch2")


def test_per_channel_on_mono_is_refused() -> None:
    with pytest.raises(DagError, match="at least two channels"):
        build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.PER_CHANNEL, channels=1))


def test_unsupported_speaker_detection_is_refused() -> None:
    with pytest.raises(DagError, match="not supported"):
        build_dag(JobSpec(model="tiny.en", speaker_detection="telepathy"))


def test_per_stage_engine_override() -> None:
    parameters = JobParameters(engines={Stage.DIARIZE: "pyannote-4.0"})
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, parameters=parameters)))
    assert nodes["diarize"].engine_id == "pyannote-4.0"
    assert nodes["prepare"].engine_id == "prepare"


def test_job_choice_wins_over_configured_engine() -> None:
    spec = JobSpec(
        model="tiny.en",
        speaker_detection=SpeakerDetection.DIARIZE,
        parameters=JobParameters(engines={Stage.DIARIZE: "diarize-default"}),
        stage_engines={Stage.DIARIZE: "pyannote-4.0"},
    )
    assert by_name(build_dag(spec))["diarize"].engine_id == "diarize-default"
    configured = JobSpec(
        model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, stage_engines={Stage.DIARIZE: "pyannote-4.0"}
    )
    assert by_name(build_dag(configured))["diarize"].engine_id == "pyannote-4.0"


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(DagError, match="unknown engine 'parakeet'"):
        build_dag(JobSpec(model="tiny.en", parameters=JobParameters(engines={Stage.TRANSCRIBE: "parakeet"})))


def test_stage_parameters_reach_the_stages() -> None:
    parameters = JobParameters(
        transcribe=TranscribeOptions(task="translate", prompt="Dalston."), diarize=SpeakerOptions(num_speakers=2)
    )
    nodes = by_name(build_dag(JobSpec(model="base", speaker_detection=SpeakerDetection.DIARIZE, parameters=parameters)))
    assert nodes["transcribe"].config == TranscribeConfig(model="base", task="translate", prompt="Dalston.")
    assert nodes["diarize"].config == DiarizeConfig(num_speakers=2)


def test_integrated_engine_replaces_transcribe_align_and_diarize() -> None:
    # Keyterms (hotwords) reach the integrated engine's transcriber like the modular one's.
    parameters = JobParameters(
        engines={Stage.TRANSCRIBE: "whisperx-full"},
        diarize=SpeakerOptions(max_speakers=3),
        transcribe=TranscribeOptions(hotwords="Dalston, Hackney Wick"),
    )
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, parameters=parameters)))
    assert list(nodes) == ["prepare", "whisperx", "merge"]
    assert nodes["whisperx"].config == IntegratedConfig(
        transcribe=TranscribeConfig(model="tiny.en", hotwords="Dalston, Hackney Wick"), diarize=DiarizeConfig(max_speakers=3)
    )


def test_unknown_dependency_is_refused() -> None:
    with pytest.raises(DagError, match="unknown tasks"):
        validate([node("a"), node("b", "nope")])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(DagError, match="duplicate"):
        validate([node("a"), node("a")])


def test_cycle_is_detected() -> None:
    nodes = [node("a"), node("b", "a", "c"), node("c", "b"), node("d", "c")]
    with pytest.raises(DagError, match="cycle"):
        validate(nodes)


def test_graph_must_end_in_one_task() -> None:
    with pytest.raises(DagError, match="exactly one"):
        validate([node("a"), node("b", "a"), node("c", "a")])


def test_ready_nodes() -> None:
    deps = {"prepare": (), "t0": ("prepare",), "t1": ("prepare",), "merge": ("prepare", "t0", "t1")}
    assert ready_nodes(deps, completed=set(), started=set()) == ["prepare"]
    assert ready_nodes(deps, completed={"prepare"}, started={"prepare"}) == ["t0", "t1"]
    assert ready_nodes(deps, completed={"prepare", "t0"}, started={"prepare", "t0", "t1"}) == []
    assert ready_nodes(deps, completed={"prepare", "t0", "t1"}, started={"prepare", "t0", "t1"}) == ["merge"]
