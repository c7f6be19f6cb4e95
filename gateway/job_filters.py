"""The filters of `GET /v1/audio/transcriptions`: parsed from the query string, applied to a query.

Each filter narrows the caller's jobs (the route scopes by tenant first); together they are
ANDed. Migration 0008 gives each filter an index that keeps the newest-first keyset page
cheap with many jobs: (tenant_id, status|model|speaker_detection, created_at, id) b-trees
and a trigram GIN index on audio_filename for `q`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime
from sqlalchemy import Select

from gateway.errors import ApiError
from shared.catalogue import SpeakerDetection
from shared.db import Job, JobStatus

MAX_MODEL_CHARS = 200  # jobs.model is String(200)
MAX_SEARCH_CHARS = 200


@dataclass(frozen=True)
class JobFilters:
    status: JobStatus | None = None
    model: str | None = None
    speaker_detection: SpeakerDetection | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None

    def apply(self, query: Select) -> Select:
        if self.status is not None:
            query = query.where(Job.status == self.status.value)
        if self.model is not None:
            query = query.where(Job.model == self.model)
        if self.speaker_detection is not None:
            query = query.where(Job.speaker_detection == self.speaker_detection.value)
        if self.created_after is not None:
            query = query.where(Job.created_at >= self.created_after)
        if self.created_before is not None:
            query = query.where(Job.created_at < self.created_before)
        if self.q is not None:
            # ILIKE on the bare column (not lower(column)) so the trigram index serves it.
            query = query.where(Job.audio_filename.ilike(f"%{escape_like(self.q)}%", escape="\\"))
        return query


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern: its %, _ and \\ match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _choice(name: str, value: str | None, allowed: list[str]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise ApiError(400, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def job_filters(
    status: Annotated[str | None, Query(description="pending | running | completed | failed | cancelled")] = None,
    model: Annotated[
        str | None, Query(description="the model the job was submitted with, exactly (e.g. whisper-large-v3)")
    ] = None,
    speaker_detection: Annotated[str | None, Query(description="none | diarize | per_channel")] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="ISO 8601 with a UTC offset; jobs created at or after this instant")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="ISO 8601 with a UTC offset; jobs created before this instant")
    ] = None,
    q: Annotated[str | None, Query(description="case-insensitive substring of the uploaded file's name")] = None,
) -> JobFilters:
    """The list's filters from the query string; a bad value is a 400 `invalid_parameter`."""
    chosen_status = _choice("status", status, list(JobStatus.__members__))
    chosen_speakers = _choice("speaker_detection", speaker_detection, [m.value for m in SpeakerDetection])
    if model is not None:
        model = model.strip()
        if not model or len(model) > MAX_MODEL_CHARS or "\x00" in model:
            raise ApiError(400, "invalid_parameter", f"model must be a model id of 1 to {MAX_MODEL_CHARS} characters")
    if created_after is not None and created_before is not None and created_after >= created_before:
        raise ApiError(400, "invalid_parameter", "created_after must be earlier than created_before")
    if q is not None:
        q = q.strip() or None  # an empty search box filters nothing
        if q is not None and len(q) > MAX_SEARCH_CHARS:
            raise ApiError(400, "invalid_parameter", f"q must be at most {MAX_SEARCH_CHARS} characters")
        if q is not None and "\x00" in q:  # PostgreSQL text cannot hold NUL
            raise ApiError(400, "invalid_parameter", "q must not contain NUL characters")
    return JobFilters(
        status=JobStatus(chosen_status) if chosen_status else None,
        model=model,
        speaker_detection=SpeakerDetection(chosen_speakers) if chosen_speakers else None,
        created_after=created_after,
        created_before=created_before,
        q=q,
    )
