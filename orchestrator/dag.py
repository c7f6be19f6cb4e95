"""Job → task DAG. Pure functions: parameters in, nodes out.

Nodes name their dependencies, so parallel branches (per-channel transcription, a
diarizer beside the transcriber) are just nodes that share a parent. Each stage's engine
is chosen here, from the job parameters and the defaults below.

Shapes by speaker_detection:
- none:        prepare → transcribe → merge
- diarize:     prepare → transcribe ‖ diarize → (align) → merge; align only when the
               transcriber gives no word timestamps or the job asks for it, and optional:
               its failure leaves the transcriber's own timestamps and a warning.
- per_channel: prepare → transcribe_ch{c} for every channel, in parallel → merge
An integrated engine (whisperx-full) chosen as the transcriber replaces transcribe, align
and diarize with one task, whose output merge reads as `whisperx`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_ENGINES = {
    "prepare": "prepare",
    "transcribe": "faster-whisper",
    "align": "phoneme-align",
    "diarize": "diarize-default",
    "merge": "merge",
}
# Transcribers whose output has no word timestamps: with speakers to assign, align must run.
WITHOUT_WORD_TIMESTAMPS: frozenset[str] = frozenset()
# Engines that run transcribe (+ align) + diarize in one task.
INTEGRATED_ENGINES: frozenset[str] = frozenset({"whisperx-full"})


class DagError(ValueError):
    pass


@dataclass(frozen=True)
class TaskNode:
    name: str
    stage: str
    engine_id: str
    depends_on: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True)
class JobSpec:
    model: str
    language: str | None = None
    speaker_detection: str = "none"
    channels: int = 1
    engines: dict[str, str] = field(default_factory=dict)  # per-stage engine overrides
    parameters: dict[str, Any] = field(default_factory=dict)


def build_dag(spec: JobSpec) -> list[TaskNode]:
    engines = {**DEFAULT_ENGINES, **spec.engines}
    transcribe_config = {"model": spec.model, "language": spec.language, **spec.parameters.get("transcribe", {})}
    speakers = dict(spec.parameters.get("diarize", {}))
    align_requested = bool(spec.parameters.get("align"))

    nodes = [TaskNode("prepare", "prepare", engines["prepare"])]
    if engines["transcribe"] in INTEGRATED_ENGINES:
        if spec.speaker_detection == "per_channel":
            raise DagError(
                f"{engines['transcribe']} transcribes one mixed-down track; it cannot run speaker_detection=per_channel"
            )
        config = {
            **transcribe_config,
            "diarize": spec.speaker_detection == "diarize",
            "align": align_requested,
            "speakers": speakers,
        }
        nodes.append(TaskNode("whisperx", "transcribe", engines["transcribe"], ("prepare",), config))
    elif spec.speaker_detection == "none":
        nodes.append(TaskNode("transcribe", "transcribe", engines["transcribe"], ("prepare",), transcribe_config))
        if align_requested:
            nodes.append(_align(engines, "transcribe"))
    elif spec.speaker_detection == "diarize":
        nodes.append(TaskNode("transcribe", "transcribe", engines["transcribe"], ("prepare",), transcribe_config))
        # Beside the transcriber, not after it: both only need the prepared audio.
        nodes.append(TaskNode("diarize", "diarize", engines["diarize"], ("prepare",), speakers))
        if align_requested or engines["transcribe"] in WITHOUT_WORD_TIMESTAMPS:
            nodes.append(_align(engines, "transcribe"))
    elif spec.speaker_detection == "per_channel":
        if spec.channels < 2:
            raise DagError("speaker_detection=per_channel needs audio with at least two channels")
        nodes += [
            TaskNode(f"transcribe_ch{c}", "transcribe", engines["transcribe"], ("prepare",), {**transcribe_config, "channel": c})
            for c in range(spec.channels)
        ]
    else:
        raise DagError(f"speaker_detection={spec.speaker_detection!r} is not supported")
    merge_deps = tuple(n.name for n in nodes)
    nodes.append(
        TaskNode(
            "merge", "merge", engines["merge"], merge_deps, {"model": spec.model, "speaker_detection": spec.speaker_detection}
        )
    )
    validate(nodes)
    return nodes


def _align(engines: dict[str, str], transcriber: str) -> TaskNode:
    # Optional: without it the transcriber's own word timestamps stand (with a warning).
    return TaskNode("align", "align", engines["align"], ("prepare", transcriber), required=False)


def validate(nodes: list[TaskNode]) -> None:
    """Every dependency exists, the graph has no cycle and ends in one task (its output is the transcript)."""
    names = {n.name for n in nodes}
    if len(names) != len(nodes):
        raise DagError("duplicate task names")
    for n in nodes:
        missing = set(n.depends_on) - names
        if missing:
            raise DagError(f"{n.name} depends on unknown tasks {sorted(missing)}")
    done: set[str] = set()
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if set(n.depends_on) <= done]
        if not ready:
            raise DagError("task graph has a cycle")
        done |= {n.name for n in ready}
        remaining = [n for n in remaining if n.name not in done]
    sinks = names - {d for n in nodes for d in n.depends_on}
    if len(sinks) != 1:
        raise DagError(f"task graph must end in exactly one task, not {sorted(sinks)}")


def ready_nodes(depends_on: dict[str, tuple[str, ...] | list[str]], completed: set[str], started: set[str]) -> list[str]:
    """Names whose dependencies are all completed and that have not been started."""
    return [name for name, deps in depends_on.items() if name not in started and set(deps) <= completed]
