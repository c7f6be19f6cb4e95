"""Job → task DAG. Pure functions: parameters in, nodes out.

Nodes name their dependencies, so parallel branches (per-channel transcription, a
diarizer beside the transcriber) are just nodes that share a parent. Each stage's engine
is chosen here: the job's choice, else the configured one, else the catalogue's default.

Shapes by speaker_detection:
- none:        prepare → transcribe → merge
- diarize:     prepare → transcribe ‖ diarize → (align) → merge; align only when the
               transcriber gives no word timestamps or the job asks for it, and optional:
               its failure leaves the transcriber's own timestamps and a warning.
- per_channel: prepare → transcribe_ch{c} for every channel, in parallel → merge
An integrated engine (whisperx-full) chosen as the transcriber replaces transcribe, align
and diarize with one task, named by its catalogue entry (`whisperx`), whose output merge reads.
An enrollment job (a speaker library sample, JobPurpose.ENROLLMENT) is prepare → diarize:
the diarize output, with the sample's voiceprint, is its result.
Enrichment follows the transcription tasks, before merge:
- detect (PII) reads the assembled transcript; required: a job that asked for redaction
  must not complete with its entities silently left in;
- redact (audio) needs detect's entities and the original audio; required;
- refine (LLM cleanup) reads the transcript and detect's entities; optional: its failure
  leaves the unrefined transcript and a warning.
- emotions (per segment) reads the transcript's segments and their audio; events reads only
  the audio, so it runs beside the transcriber. Both optional: a transcript without them and
  a warning beats no transcript.
Engines and their capabilities come from the stage catalogue (shared/catalogue.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.catalogue import DEFAULT_ENGINES, SpeakerDetection, Stage, UnknownEngine, engine
from shared.contracts import (
    AlignConfig,
    DetectConfig,
    DiarizeConfig,
    EmotionsConfig,
    EventsConfig,
    IntegratedConfig,
    JobParameters,
    JobPurpose,
    MergeConfig,
    PrepareConfig,
    RedactConfig,
    RefineConfig,
    TaskConfig,
    TranscribeConfig,
)


class DagError(ValueError):
    pass


@dataclass(frozen=True)
class TaskNode:
    name: str
    stage: Stage
    engine_id: str
    config: TaskConfig
    depends_on: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True)
class JobSpec:
    model: str
    language: str | None = None
    speaker_detection: SpeakerDetection = SpeakerDetection.NONE
    channels: int = 1
    parameters: JobParameters = field(default_factory=JobParameters)
    # Configured per-stage engines (DALSTON_STAGE_ENGINES); the job's own choice wins over them.
    stage_engines: dict[Stage, str] = field(default_factory=dict)
    purpose: JobPurpose = JobPurpose.TRANSCRIPTION


def build_dag(spec: JobSpec) -> list[TaskNode]:
    engines = {**DEFAULT_ENGINES, **spec.stage_engines, **spec.parameters.engines}
    try:
        transcriber = engine(engines[Stage.TRANSCRIBE])
        for engine_id in engines.values():
            engine(engine_id)
        mode = SpeakerDetection(spec.speaker_detection)
    except UnknownEngine as exc:
        raise DagError(str(exc)) from None
    except ValueError:
        raise DagError(f"speaker_detection={spec.speaker_detection!r} is not supported") from None
    transcribe = TranscribeConfig(model=spec.model, language=spec.language, **spec.parameters.transcribe.model_dump())
    diarize = DiarizeConfig(**spec.parameters.diarize.model_dump())
    align_requested = spec.parameters.align

    nodes = [TaskNode("prepare", Stage.PREPARE, engines[Stage.PREPARE], PrepareConfig())]
    if spec.purpose == JobPurpose.ENROLLMENT:
        nodes.append(TaskNode("diarize", Stage.DIARIZE, engines[Stage.DIARIZE], diarize, ("prepare",)))
        validate(nodes)
        return nodes
    if transcriber.integrated:
        if mode == SpeakerDetection.PER_CHANNEL:
            raise DagError(f"{transcriber.id} transcribes one mixed-down track; it cannot run speaker_detection=per_channel")
        config = IntegratedConfig(
            transcribe=transcribe, align=align_requested, diarize=diarize if mode == SpeakerDetection.DIARIZE else None
        )
        nodes.append(
            TaskNode(transcriber.integrated_task or transcriber.id, Stage.TRANSCRIBE, transcriber.id, config, ("prepare",))
        )
    elif mode == SpeakerDetection.NONE:
        nodes.append(TaskNode("transcribe", Stage.TRANSCRIBE, transcriber.id, transcribe, ("prepare",)))
        if align_requested:
            nodes.append(_align(engines, "transcribe"))
    elif mode == SpeakerDetection.DIARIZE:
        nodes.append(TaskNode("transcribe", Stage.TRANSCRIBE, transcriber.id, transcribe, ("prepare",)))
        # Beside the transcriber, not after it: both only need the prepared audio.
        nodes.append(TaskNode("diarize", Stage.DIARIZE, engines[Stage.DIARIZE], diarize, ("prepare",)))
        if align_requested or not transcriber.word_timestamps:
            nodes.append(_align(engines, "transcribe"))
    else:  # per_channel
        if spec.channels < 2:
            raise DagError("speaker_detection=per_channel needs audio with at least two channels")
        nodes += [
            TaskNode(
                f"transcribe_ch{c}", Stage.TRANSCRIBE, transcriber.id, transcribe.model_copy(update={"channel": c}), ("prepare",)
            )
            for c in range(spec.channels)
        ]
    nodes += _enrichment(spec.parameters, engines, transcription=tuple(n.name for n in nodes))
    merge_deps = tuple(n.name for n in nodes)
    nodes.append(TaskNode("merge", Stage.MERGE, engines[Stage.MERGE], MergeConfig(), merge_deps))
    validate(nodes)
    return nodes


def _enrichment(parameters: JobParameters, engines: dict[Stage, str], transcription: tuple[str, ...]) -> list[TaskNode]:
    enrich = parameters.enrich
    nodes: list[TaskNode] = []
    if enrich.detect:
        config = DetectConfig(entity_types=enrich.pii_entity_types)
        nodes.append(TaskNode("detect", Stage.DETECT, engines[Stage.DETECT], config, transcription))
    if enrich.redact_pii_audio:
        config_r = RedactConfig(
            mode=enrich.pii_redaction_mode, buffer_s=enrich.pii_audio_buffer_s, delete_original=enrich.delete_original_audio
        )
        nodes.append(TaskNode("redact", Stage.REDACT, engines[Stage.REDACT], config_r, ("prepare", "detect")))
    if enrich.refine:
        config_f = RefineConfig(
            cleanup=enrich.llm_cleanup or enrich.no_verbatim or enrich.summary,
            no_verbatim=enrich.no_verbatim,
            summary=enrich.summary,
            speaker_roles=enrich.speaker_roles,
        )
        deps = transcription + (("detect",) if enrich.detect else ())
        nodes.append(TaskNode("refine", Stage.REFINE, engines[Stage.REFINE], config_f, deps, required=False))
    if enrich.detect_emotions:
        nodes.append(
            TaskNode("emotions", Stage.EMOTIONS, engines[Stage.EMOTIONS], EmotionsConfig(), transcription, required=False)
        )
    if enrich.detect_events:
        nodes.append(TaskNode("events", Stage.EVENTS, engines[Stage.EVENTS], EventsConfig(), ("prepare",), required=False))
    return nodes


def _align(engines: dict[Stage, str], transcriber: str) -> TaskNode:
    # Optional: without it the transcriber's own word timestamps stand (with a warning).
    return TaskNode("align", Stage.ALIGN, engines[Stage.ALIGN], AlignConfig(), ("prepare", transcriber), required=False)


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
