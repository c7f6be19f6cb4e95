"""Response models of the native batch API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from shared.transcript import Entity, Transcript


class AudioInfo(BaseModel):
    filename: str | None
    bytes: int
    format: str | None
    duration: float
    channels: int
    sample_rate: int


class Stage(BaseModel):
    name: str
    stage: str
    engine_id: str
    status: str
    attempt: int
    queued_at: datetime | None = None  # when the task last went onto its engine's stream
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error: str | None


class JobSummary(BaseModel):
    id: uuid.UUID
    status: str
    model: str
    language: str | None
    speaker_detection: str
    audio: AudioInfo
    error: str | None
    warnings: list[str]  # problems that did not fail the job, e.g. an optional stage that failed
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    # Hybrid mode: the realtime session whose recording this job enhances.
    source_session_id: uuid.UUID | None = None


class JobDetail(JobSummary):
    progress: float  # completed tasks / total tasks
    stages: list[Stage]  # in DAG order
    transcript: Transcript | None  # once completed; speaker labels carry their names
    # The names given to the pipeline's speaker ids ({"speaker_0": "Margaret"}) by the user,
    # an enrolled voice or the LLM: the transcript already shows them; this says which id
    # each name stands for.
    speaker_names: dict[str, str] = Field(default_factory=dict)
    # Enrichment, once completed: the detected entities (None: detection not asked), the
    # refine stage's summary, and the transcript text with the entities replaced by
    # placeholders when the job asked for redact_pii_text.
    entities: list[Entity] | None = None
    summary: str | None = None
    redacted_text: str | None = None
    # Days the audio is kept after the job finished (-1: kept; see shared.retention), and
    # when the purge removed it (the transcript stays).
    retention_days: int = -1
    purged_at: datetime | None = None


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None
    has_more: bool


class ErrorInfo(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorInfo
