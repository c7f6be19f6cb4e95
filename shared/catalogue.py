"""The stage catalogue: every pipeline stage, every engine and what each can do, listed once.

The DAG builder, request validation, the OpenAPI enums, `dalston up`, the compose checks,
the engine runner and the realtime status all read this module. Adding an engine for an
existing stage is one sub-package under `engines/` plus one `EngineInfo` below; adding a
stage is that, a `Stage` member, its place in `orchestrator/dag.py` and its contract in
`shared/contracts.py`.

Nothing here imports an engine: the gateway and the orchestrator read the catalogue
without loading models or their libraries.
"""

from __future__ import annotations

import enum
import importlib.util
from dataclasses import dataclass
from typing import Protocol


class Stage(enum.StrEnum):
    """Pipeline stages, in pipeline order."""

    PREPARE = "prepare"
    TRANSCRIBE = "transcribe"
    ALIGN = "align"
    DIARIZE = "diarize"
    DETECT = "detect"  # sensitive entities (PII) in the transcript
    EMOTIONS = "emotions"  # the emotion of each segment, from its audio
    EVENTS = "events"  # non-speech audio events (laughter, applause, music) with times
    REDACT = "redact"  # the audio with those entities silenced or beeped
    REFINE = "refine"  # LLM cleanup of the text
    MERGE = "merge"


class SpeakerDetection(enum.StrEnum):
    NONE = "none"
    DIARIZE = "diarize"
    PER_CHANNEL = "per_channel"


class WeightSettings(Protocol):
    """The settings an engine's weights are configured in (shared.settings.Settings)."""

    pyannote_model: str | None
    align_model: str | None
    llm_base_url: str | None
    emotion_model: str | None
    events_model: str | None


@dataclass(frozen=True)
class EngineInfo:
    id: str
    stage: Stage
    entry: str  # "module:Class" that engines.runner imports in the engine's own process
    summary: str
    # Transcribers: whether the output carries word timestamps (without them, speaker
    # assignment needs the align stage).
    word_timestamps: bool = False
    gpu: bool = False  # can run on a GPU when its device setting says so
    extra: str | None = None  # the pyproject extra (and image) it needs beyond the core install
    probe_module: str | None = None  # importable only when that extra is installed
    weights_setting: str | None = None  # the Settings field that must be set: its weights (or its server)
    # An integrated engine runs these stages in one task (whisperx-full); the DAG gives
    # its task the name `integrated_task` and merge reads all of them from its output.
    runs_stages: tuple[Stage, ...] = ()
    integrated_task: str | None = None
    selectable: bool = True  # a request may choose it (`diarizer=`, `pipeline=integrated`)
    # Diarizers: whether the output carries each speaker's voiceprint, which known speakers
    # (the speaker library) are matched against and enrollment is made from.
    voiceprints: bool = False
    autostart: bool = False  # `dalston up` starts it without configuration

    @property
    def integrated(self) -> bool:
        return bool(self.runs_stages)

    def installed(self) -> bool:
        return self.probe_module is None or importlib.util.find_spec(self.probe_module) is not None

    def unconfigured(self, settings: WeightSettings) -> str | None:
        """Why this engine cannot run with these settings (its weights are not set), or None."""
        if self.weights_setting and not getattr(settings, self.weights_setting):
            return f"{self.id} is not configured (DALSTON_{self.weights_setting.upper()})"
        return None


ENGINES: dict[str, EngineInfo] = {
    e.id: e
    for e in (
        EngineInfo(
            "prepare",
            Stage.PREPARE,
            "engines.prepare.engine:PrepareEngine",
            "decode, resample to 16 kHz mono, split channels",
            selectable=False,
            autostart=True,
        ),
        EngineInfo(
            "faster-whisper",
            Stage.TRANSCRIBE,
            "engines.faster_whisper.engine:FasterWhisperEngine",
            "Whisper on CTranslate2, models from the model registry",
            word_timestamps=True,
            gpu=True,
            autostart=True,
        ),
        EngineInfo(
            "phoneme-align",
            Stage.ALIGN,
            "engines.align.engine:Wav2Vec2AlignEngine",
            "wav2vec2 CTC forced alignment of the transcript's words",
            gpu=True,
            extra="align",
            probe_module="transformers",
            weights_setting="align_model",
        ),
        EngineInfo(
            "diarize-default",
            Stage.DIARIZE,
            "engines.diarize_default.engine:DefaultDiarizerEngine",
            "Silero VAD + resemblyzer embeddings + clustering",
            extra="diarize",
            probe_module="resemblyzer",
            autostart=True,
            voiceprints=True,
        ),
        EngineInfo(
            "pyannote-4.0",
            Stage.DIARIZE,
            "engines.pyannote.engine:PyannoteEngine",
            "pyannote.audio 4 speaker-diarization pipeline",
            gpu=True,
            extra="pyannote",
            probe_module="pyannote.audio",
            weights_setting="pyannote_model",
        ),
        EngineInfo(
            "whisperx-full",
            Stage.TRANSCRIBE,
            "engines.whisperx_full.engine:WhisperXFullEngine",
            "transcribe, align and diarize in one task (the WhisperX recipe)",
            word_timestamps=True,
            gpu=True,
            extra="diarize",
            probe_module="resemblyzer",
            runs_stages=(Stage.TRANSCRIBE, Stage.ALIGN, Stage.DIARIZE),
            integrated_task="whisperx",
        ),
        EngineInfo(
            "pii-presidio",
            Stage.DETECT,
            "engines.pii_presidio.engine:PresidioEngine",
            "Presidio analyzer with spaCy English NER and validated patterns, written and spoken forms",
            extra="pii",
            probe_module="presidio_analyzer",
            autostart=True,
        ),
        EngineInfo(
            "emotion2vec",
            Stage.EMOTIONS,
            "engines.emotion2vec.engine:Emotion2vecEngine",
            "emotion2vec+ (FunASR) speech emotion per segment: angry, happy, neutral, sad, ...",
            gpu=True,
            extra="emotion",
            probe_module="funasr",
            weights_setting="emotion_model",
        ),
        EngineInfo(
            "panns-events",
            Stage.EVENTS,
            "engines.panns_events.engine:PannsEventsEngine",
            "PANNs CNN14 sound event detection (AudioSet): laughter, applause, music, ... with times",
            gpu=True,
            extra="events",
            probe_module="panns_inference",
            weights_setting="events_model",
        ),
        EngineInfo(
            "audio-redactor",
            Stage.REDACT,
            "engines.audio_redactor.engine:AudioRedactorEngine",
            "silence or a 1 kHz beep over each entity's span, every channel, original sample rate",
            autostart=True,
        ),
        EngineInfo(
            "llm-cleanup",
            Stage.REFINE,
            "engines.llm_cleanup.engine:LlmCleanupEngine",
            "punctuation, casing, fillers and speaker names through an OpenAI-compatible chat endpoint",
            weights_setting="llm_base_url",
        ),
        EngineInfo(
            "merge",
            Stage.MERGE,
            "engines.merge.engine:MergeEngine",
            "assemble the canonical transcript from the stage outputs",
            selectable=False,
            autostart=True,
        ),
    )
}

# The engine each stage runs unless settings (DALSTON_STAGE_ENGINES) or the job choose another.
DEFAULT_ENGINES: dict[Stage, str] = {
    Stage.PREPARE: "prepare",
    Stage.TRANSCRIBE: "faster-whisper",
    Stage.ALIGN: "phoneme-align",
    Stage.DIARIZE: "diarize-default",
    Stage.DETECT: "pii-presidio",
    Stage.EMOTIONS: "emotion2vec",
    Stage.EVENTS: "panns-events",
    Stage.REDACT: "audio-redactor",
    Stage.REFINE: "llm-cleanup",
    Stage.MERGE: "merge",
}


class UnknownEngine(LookupError):
    pass


def engine(engine_id: str) -> EngineInfo:
    try:
        return ENGINES[engine_id]
    except KeyError:
        raise UnknownEngine(f"unknown engine {engine_id!r}; available: {', '.join(sorted(ENGINES))}") from None


def engines_for(stage: Stage, *, selectable: bool = False) -> tuple[str, ...]:
    """Engine ids of `stage`, integrated engines excluded (see `integrated_engines`)."""
    return tuple(e.id for e in ENGINES.values() if e.stage == stage and not e.integrated and (e.selectable or not selectable))


def integrated_engines() -> tuple[str, ...]:
    return tuple(e.id for e in ENGINES.values() if e.integrated)


def check_stage_engines(choices: dict[str, str]) -> dict[Stage, str]:
    """Validate a stage → engine mapping (settings or a job's choice): known stages, engines of that stage."""
    checked: dict[Stage, str] = {}
    for stage_name, engine_id in choices.items():
        try:
            stage = Stage(stage_name)
        except ValueError:
            raise ValueError(f"unknown stage {stage_name!r}; stages: {', '.join(Stage)}") from None
        try:
            info = engine(engine_id)
        except UnknownEngine as exc:
            raise ValueError(str(exc)) from None
        if info.stage != stage:
            raise ValueError(f"engine {engine_id!r} runs stage {info.stage}, not {stage}")
        checked[stage] = engine_id
    return checked


# --- realtime -------------------------------------------------------------------------


class RealtimeSettings(Protocol):
    parakeet_models: dict[str, str]


@dataclass(frozen=True)
class RealtimeBackend:
    id: str
    summary: str
    extra: str | None = None
    gpu: bool = False


REALTIME_BACKENDS: dict[str, RealtimeBackend] = {
    b.id: b
    for b in (
        RealtimeBackend("faster-whisper", "VAD-chunked Whisper with partial re-decoding; models from the model registry"),
        RealtimeBackend("parakeet", "NVIDIA NeMo Parakeet streaming; weights from DALSTON_PARAKEET_MODELS", "parakeet", True),
    )
}


def realtime_backend(model: str, settings: RealtimeSettings) -> RealtimeBackend:
    """The backend that serves a realtime model name: Parakeet names (configured or `parakeet*`), else Whisper."""
    if model in settings.parakeet_models or model.startswith("parakeet"):
        return REALTIME_BACKENDS["parakeet"]
    return REALTIME_BACKENDS["faster-whisper"]
