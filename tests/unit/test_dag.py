import pytest

from orchestrator.dag import DagError, JobSpec, TaskNode, build_dag, ready_nodes, validate


def by_name(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    return {n.name: n for n in nodes}


def test_none_is_prepare_transcribe_merge() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", language="en")))
    assert list(nodes) == ["prepare", "transcribe", "merge"]
    assert nodes["prepare"].depends_on == ()
    assert nodes["transcribe"].depends_on == ("prepare",)
    assert nodes["merge"].depends_on == ("prepare", "transcribe")
    assert [nodes[n].engine_id for n in nodes] == ["prepare", "faster-whisper", "merge"]
    assert nodes["transcribe"].config == {"model": "tiny.en", "language": "en"}
    assert nodes["merge"].config == {"model": "tiny.en", "speaker_detection": "none"}


def test_per_channel_fans_out_one_transcriber_per_channel() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", speaker_detection="per_channel", channels=3)))
    transcribers = [n for n in nodes.values() if n.stage == "transcribe"]
    assert [t.name for t in transcribers] == ["transcribe_ch0", "transcribe_ch1", "transcribe_ch2"]
    assert all(t.depends_on == ("prepare",) for t in transcribers)
    assert [t.config["channel"] for t in transcribers] == [0, 1, 2]
    assert nodes["merge"].depends_on == ("prepare", "transcribe_ch0", "transcribe_ch1", "transcribe_ch2")


def test_per_channel_on_mono_is_refused() -> None:
    with pytest.raises(DagError, match="at least two channels"):
        build_dag(JobSpec(model="tiny.en", speaker_detection="per_channel", channels=1))


def test_unsupported_speaker_detection_is_refused() -> None:
    with pytest.raises(DagError, match="not supported"):
        build_dag(JobSpec(model="tiny.en", speaker_detection="telepathy"))


def test_per_stage_engine_override() -> None:
    nodes = by_name(build_dag(JobSpec(model="tiny.en", engines={"transcribe": "parakeet"})))
    assert nodes["transcribe"].engine_id == "parakeet"
    assert nodes["prepare"].engine_id == "prepare"


def test_stage_parameters_reach_the_transcriber() -> None:
    spec = JobSpec(model="tiny.en", parameters={"transcribe": {"beam_size": 5}})
    assert by_name(build_dag(spec))["transcribe"].config["beam_size"] == 5


def test_unknown_dependency_is_refused() -> None:
    with pytest.raises(DagError, match="unknown tasks"):
        validate([TaskNode("a", "prepare", "prepare"), TaskNode("b", "merge", "merge", ("nope",))])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(DagError, match="duplicate"):
        validate([TaskNode("a", "prepare", "prepare"), TaskNode("a", "merge", "merge")])


def test_cycle_is_detected() -> None:
    nodes = [
        TaskNode("a", "prepare", "prepare"),
        TaskNode("b", "transcribe", "x", ("a", "c")),
        TaskNode("c", "transcribe", "x", ("b",)),
        TaskNode("d", "merge", "merge", ("c",)),
    ]
    with pytest.raises(DagError, match="cycle"):
        validate(nodes)


def test_graph_must_end_in_one_task() -> None:
    with pytest.raises(DagError, match="exactly one"):
        validate([TaskNode("a", "prepare", "prepare"), TaskNode("b", "x", "x", ("a",)), TaskNode("c", "y", "y", ("a",))])


def test_ready_nodes() -> None:
    deps = {"prepare": (), "t0": ("prepare",), "t1": ("prepare",), "merge": ("prepare", "t0", "t1")}
    assert ready_nodes(deps, completed=set(), started=set()) == ["prepare"]
    assert ready_nodes(deps, completed={"prepare"}, started={"prepare"}) == ["t0", "t1"]
    assert ready_nodes(deps, completed={"prepare", "t0"}, started={"prepare", "t0", "t1"}) == []
    assert ready_nodes(deps, completed={"prepare", "t0", "t1"}, started={"prepare", "t0", "t1"}) == ["merge"]
