"""Stage I/O, stream messages and the canonical transcript, defined once.

Every external format (native JSON, ElevenLabs, OpenAI, SRT, VTT, ...) is a pure
function of `Transcript`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# --- transcript -------------------------------------------------------------------


class Word(BaseModel):
    text: str
    start: float
    end: float
    probability: float | None = None
    speaker: str | None = None
    channel: int | None = None


class Segment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    speaker: str | None = None
    channel: int | None = None
    # Raw decoder values, as the model produced them.
    seek: int | None = None  # Whisper's decoding-window offset, in mel frames
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None
    tokens: list[int] = Field(default_factory=list)


class StageInfo(BaseModel):
    stage: str
    engine_id: str
    duration_ms: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Transcript(BaseModel):
    text: str
    language: str
    language_probability: float | None
    duration: float
    segments: list[Segment]
    words: list[Word]
    speakers: list[str] = Field(default_factory=list)
    channels: int = 1
    model: str
    stages: list[StageInfo] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


# --- stage outputs ------------------------------------------------------------------


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


class DiarizeOutput(BaseModel):
    """Who spoke when. Turns are sorted by start and never overlap within one speaker."""

    turns: list[SpeakerTurn]
    num_speakers: int
    duration: float
    details: dict[str, Any] = Field(default_factory=dict)


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


# --- stream messages ----------------------------------------------------------------


class TaskMessage(BaseModel):
    """What the orchestrator puts on `dalston:stream:{engine_id}`; engines need nothing else."""

    task_id: str
    job_id: str
    name: str
    stage: str
    engine_id: str
    attempt: int
    audio_key: str  # the original upload
    inputs: dict[str, str]  # dependency task name -> its output key
    output_prefix: str  # where the engine writes its artifacts
    config: dict[str, Any] = Field(default_factory=dict)


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
