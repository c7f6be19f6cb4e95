"""Typed contracts between services, defined once: job parameters, per-stage task configs,
stage outputs and stream messages.

The three API front ends (native, ElevenLabs, OpenAI) produce `JobOptions`; the
orchestrator's DAG builder turns them into one `TaskConfig` per task; engines receive it in
`TaskMessage.config` and write their stage's output model. The canonical transcript is in
shared/transcript.py.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, model_validator

from shared.catalogue import ENGINES, SpeakerDetection, Stage
from shared.formats.elevenlabs import ResponseOptions
from shared.transcript import AudioEvent, Emotion, Entity, Segment, SpeakerMatch

# --- job parameters ----------------------------------------------------------------------


class TranscribeOptions(BaseModel):
    """How to transcribe: Whisper's task, prompt and temperature (unset: the engine's defaults)."""

    task: Literal["transcribe", "translate"] = "transcribe"
    prompt: str | None = None
    temperature: float | None = None
    # Terms to bias the decoder towards in every window (ElevenLabs keyterms; faster-whisper hotwords).
    hotwords: str | None = None


class KnownSpeaker(BaseModel):
    """An enrolled voice the diarizer may recognise (resolved from the tenant's library at submission)."""

    id: str
    name: str
    embedding: list[float]  # unit-norm voiceprint
    encoder: str  # the speaker encoder that made it: voiceprints of different encoders do not compare


class SpeakerOptions(BaseModel):
    """What the diarize stage is told about the speakers."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    threshold: float | None = None  # ElevenLabs' diarization_threshold
    # Voices to name the found speakers by (native known_speakers, ElevenLabs use_speaker_library).
    known_speakers: list[KnownSpeaker] = Field(default_factory=list)


class ElevenLabsOptions(BaseModel):
    """What an ElevenLabs request asked for that shapes later responses and its webhook."""

    request_id: str | None = None
    webhook: bool = False
    webhook_id: str | None = None
    webhook_metadata: JsonValue = None
    request_options: ResponseOptions = Field(default_factory=ResponseOptions)


RedactionStyle = Literal["redacted", "entity_type", "enumerated_entity_type"]
AudioRedactionMode = Literal["silence", "beep"]


class EnrichOptions(BaseModel):
    """What to find and change after transcription: PII (detect, redact), LLM cleanup (refine)."""

    pii_detection: bool = False
    pii_entity_types: list[str] | None = None  # shared.entities ids; None: every type
    # Replace the entities in the returned text with placeholders ({REDACTED}, {PERSON_NAME}, {PERSON_NAME_1}).
    redact_pii_text: RedactionStyle | None = None
    redact_pii_audio: bool = False
    pii_redaction_mode: AudioRedactionMode = "silence"
    pii_audio_buffer_s: float = Field(0.1, ge=0, le=2)  # widen each redacted span by this much, both sides
    delete_original_audio: bool = False  # keep only the redacted audio once it exists
    llm_cleanup: bool = False  # punctuation/casing repair and speaker naming through the configured LLM
    no_verbatim: bool = False  # also remove fillers and false starts (ElevenLabs no_verbatim)
    summary: bool = False
    # ElevenLabs detect_speaker_roles: which diarized speaker is the agent, which the customer.
    speaker_roles: bool = False
    detect_emotions: bool = False  # the emotion of each segment (emotions stage)
    detect_events: bool = False  # non-speech audio events with times (events stage)

    @property
    def detect(self) -> bool:
        return self.pii_detection or self.redact_pii_audio or self.redact_pii_text is not None

    @property
    def refine(self) -> bool:
        return self.llm_cleanup or self.no_verbatim or self.summary or self.speaker_roles


class JobParameters(BaseModel):
    """A job's options beyond its columns (model, language, speaker_detection); stored in
    `jobs.parameters` with only the fields a front end set (`stored()`)."""

    transcribe: TranscribeOptions = Field(default_factory=TranscribeOptions)
    diarize: SpeakerOptions = Field(default_factory=SpeakerOptions)
    align: bool = False  # refine word timestamps by forced alignment
    engines: dict[Stage, str] = Field(default_factory=dict)  # the job's engine per stage
    elevenlabs: ElevenLabsOptions | None = None
    enrich: EnrichOptions = Field(default_factory=EnrichOptions)
    # Display names for the transcript's speaker ids ({"speaker_0": "Margaret"}), set after
    # completion (PUT .../speakers). Not an option of the run: the stored transcript keeps
    # the pipeline's ids and every reader applies these names (gateway.stored_jobs), and a
    # re-run, whose speakers may differ, starts without them.
    speaker_names: dict[str, str] = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class JobPurpose(enum.StrEnum):
    """Why a job runs (`jobs.purpose`). Enrollment jobs (POST /v1/speakers) are internal:
    prepare → diarize only, for the sample's voiceprint; no transcript, no webhooks, and
    never listed or served as the tenant's jobs."""

    TRANSCRIPTION = "transcription"
    ENROLLMENT = "enrollment"


class JobOptions(BaseModel):
    """A validated batch request, whichever API it came through."""

    model: str
    language: str | None = None
    speaker_detection: SpeakerDetection = SpeakerDetection.NONE
    parameters: JobParameters = Field(default_factory=JobParameters)

    def stored(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json", exclude={"parameters"}), "parameters": self.parameters.stored()}


# --- task configs: what each stage's engine is told ----------------------------------


class PrepareConfig(BaseModel):
    kind: Literal["prepare"] = "prepare"


class TranscribeConfig(TranscribeOptions):
    kind: Literal["transcribe"] = "transcribe"
    model: str | None = None  # None: the server's default model
    language: str | None = None
    channel: int | None = None  # per_channel mode: the source channel to transcribe


class AlignConfig(BaseModel):
    kind: Literal["align"] = "align"


class DiarizeConfig(SpeakerOptions):
    kind: Literal["diarize"] = "diarize"


class IntegratedConfig(BaseModel):
    """An integrated engine's one task (whisperx-full): the configs of the stages it runs."""

    kind: Literal["integrated"] = "integrated"
    transcribe: TranscribeConfig
    align: bool = False
    diarize: DiarizeConfig | None = None  # None: no speaker detection


class DetectConfig(BaseModel):
    kind: Literal["detect"] = "detect"
    entity_types: list[str] | None = None  # shared.entities ids; None: every type


class RedactConfig(BaseModel):
    kind: Literal["redact"] = "redact"
    mode: AudioRedactionMode = "silence"
    buffer_s: float = 0.1
    delete_original: bool = False


class RefineConfig(BaseModel):
    kind: Literal["refine"] = "refine"
    # Casing/punctuation repair and speaker naming; off when only speaker roles are asked, so
    # that asking for roles never changes the text.
    cleanup: bool = True
    no_verbatim: bool = False
    summary: bool = False
    speaker_roles: bool = False  # agent/customer from context (ElevenLabs detect_speaker_roles)


class EmotionsConfig(BaseModel):
    kind: Literal["emotions"] = "emotions"


class EventsConfig(BaseModel):
    kind: Literal["events"] = "events"
    # A span starts where an event's frame probability reaches `threshold` and lasts while it
    # stays above `threshold / 2` (hysteresis: one laugh is one event, not a flicker of them).
    threshold: float = Field(0.5, gt=0, le=1)
    min_duration_s: float = Field(0.2, ge=0)


class MergeConfig(BaseModel):
    kind: Literal["merge"] = "merge"
    warnings: list[str] = Field(default_factory=list)  # failed optional stages, for the transcript


TaskConfig = Annotated[
    PrepareConfig
    | TranscribeConfig
    | AlignConfig
    | DiarizeConfig
    | IntegratedConfig
    | DetectConfig
    | RedactConfig
    | RefineConfig
    | EmotionsConfig
    | EventsConfig
    | MergeConfig,
    Field(discriminator="kind"),
]


# --- stage outputs ----------------------------------------------------------------------


class PrepareOutput(BaseModel):
    audio_key: str  # 16 kHz mono float WAV for the transcriber
    channel_keys: list[str]  # one 16 kHz WAV per source channel (per_channel mode, redaction)
    duration: float
    channels: int
    original_sample_rate: int
    original_format: str | None = None


class TranscribeOutput(BaseModel):
    language: str
    language_probability: float | None
    duration: float
    segments: list[Segment]
    model: str
    channel: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class SpeakerTurn(BaseModel):
    speaker: str
    start: float
    end: float


class Voiceprint(BaseModel):
    """One found speaker's voice: the unit-norm mean of its windows' speaker embeddings."""

    embedding: list[float]
    encoder: str  # e.g. "resemblyzer": only voiceprints of one encoder compare
    speech_seconds: float  # the speech it was averaged over


class DiarizeOutput(BaseModel):
    """Who spoke when. Turns are sorted by start and never overlap within one speaker.

    `voiceprints` (per speaker id) come from diarizers that compute speaker embeddings
    (diarize-default); others leave them empty. `matches`: the speakers recognised as one
    of the config's `known_speakers`."""

    turns: list[SpeakerTurn]
    num_speakers: int
    duration: float
    details: dict[str, Any] = Field(default_factory=dict)
    voiceprints: dict[str, Voiceprint] = Field(default_factory=dict)
    matches: dict[str, SpeakerMatch] = Field(default_factory=dict)


class AlignOutput(BaseModel):
    """The transcription's segments with word timestamps refined by forced alignment."""

    segments: list[Segment]
    details: dict[str, Any] = Field(default_factory=dict)


class IntegratedOutput(BaseModel):
    """A multi-stage engine's single task (whisperx-full): what each stage it ran produced."""

    transcribe: TranscribeOutput
    align: AlignOutput | None = None
    diarize: DiarizeOutput | None = None
    warnings: list[str] = Field(default_factory=list)


class DetectOutput(BaseModel):
    """The entities found in the assembled transcript (engines.assembly), offsets into its text."""

    entities: list[Entity]
    details: dict[str, Any] = Field(default_factory=dict)


class RedactOutput(BaseModel):
    """The original audio with every entity's span (± buffer) silenced or beeped, all channels,
    at the original sample rate, stored at `shared.keys.job_redacted_audio`."""

    audio_key: str
    spans: list[tuple[float, float]]  # seconds, merged, after the buffer
    sample_rate: int
    channels: int
    details: dict[str, Any] = Field(default_factory=dict)


class RefineOutput(BaseModel):
    """The LLM's cleanup mapped back onto the transcript: segments whose words keep their
    timestamps (words the LLM added are flagged), entities re-pointed at the new text."""

    segments: list[Segment]
    entities: list[Entity] | None = None
    speaker_names: dict[str, str] = Field(default_factory=dict)  # {"speaker_0": "Margaret"} from context
    speaker_roles: dict[str, str] = Field(default_factory=dict)  # {"speaker_0": "agent", "speaker_1": "customer"}
    summary: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class SegmentEmotion(BaseModel):
    segment: int  # the assembled transcript's segment id
    emotion: Emotion


class EmotionsOutput(BaseModel):
    """The emotion of each segment of the assembled transcript (engines.assembly) with words."""

    segments: list[SegmentEmotion]
    details: dict[str, Any] = Field(default_factory=dict)


class EventsOutput(BaseModel):
    """Non-speech audio events found in the original audio (mixed down), sorted by start."""

    events: list[AudioEvent]
    details: dict[str, Any] = Field(default_factory=dict)


# --- stream messages ----------------------------------------------------------------


class TaskMessage(BaseModel):
    """What the orchestrator puts on `dalston:stream:{engine_id}`; engines need nothing else."""

    task_id: str
    job_id: str
    name: str
    stage: Stage
    engine_id: str
    attempt: int
    audio_key: str  # the original upload
    inputs: dict[str, str]  # dependency task name -> its output key
    output_prefix: str  # where the engine writes its artifacts
    config: TaskConfig

    @model_validator(mode="before")
    @classmethod
    def _config_kind(cls, data: Any) -> Any:
        # Task rows written before configs were tagged carry no `kind`: it follows from the engine.
        if isinstance(data, dict) and isinstance(data.get("config", {}), dict) and "kind" not in data.get("config", {}):
            info = ENGINES.get(str(data.get("engine_id")))
            kind = "integrated" if info is not None and info.integrated else str(data.get("stage"))
            data = {**data, "config": {**data.get("config", {}), "kind": kind}}
        return data


class Event(BaseModel):
    """What goes on `dalston:events` for the orchestrator."""

    type: Literal["job.created", "task.started", "task.completed", "task.failed", "job.cancelled"]
    job_id: str
    task_id: str | None = None
    attempt: int | None = None
    output_key: str | None = None
    error: str | None = None
    retryable: bool = True
    started_at: float | None = None  # unix seconds, from the engine's clock
    finished_at: float | None = None
