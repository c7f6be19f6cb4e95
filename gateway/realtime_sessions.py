"""Realtime session history: the `realtime_sessions` rows the gateway keeps, and the REST
API over them.

The gateway writes the row because it sees every session from start to end: it creates it
when a worker is reserved and finishes it on whatever path the session ends by (the client
ends or leaves, the worker reports a fatal error, the worker dies). The worker writes the
recording and finals into object storage as the session runs (shared.realtime.recording).

- `GET /v1/realtime/sessions`: newest first; `limit`, `cursor`, `status`, `model`,
  `started_after`, `started_before`.
- `GET /v1/realtime/sessions/{id}`, `/transcript`, `/audio` (WAV, 16 kHz mono PCM16).
- `DELETE /v1/realtime/sessions/{id}`: the row and everything stored for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import hybrid
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.pagination import newest_first
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from shared import retention
from shared.db import RealtimeSession, RealtimeSessionStatus
from shared.realtime import protocol as p
from shared.realtime import recording

log = structlog.get_logger("gateway.realtime_sessions")

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409)}
router = APIRouter(prefix="/v1/realtime/sessions", tags=["realtime"], responses=_ERRORS)
Reader = Annotated[Principal, Depends(require_scope("realtime"))]


# -- the row's lifecycle, driven by gateway.realtime.proxy ------------------------------


class SessionRecord:
    """One live session's row: counts finals as they pass, finishes the row at the end."""

    def __init__(self, services: Services, principal: Principal, session_id: uuid.UUID, options: hybrid.HybridOptions) -> None:
        self.services = services
        self.principal = principal
        self.id = session_id
        self.options = options
        self.segments = 0
        self.words = 0
        self.end: p.SessionEnd | None = None  # the worker's session.end
        self.error: str | None = None  # a fatal error the worker reported
        self.enhancement_job_id: uuid.UUID | None = None
        self.enhancement_error: str | None = None
        self.enhanced = False

    @classmethod
    async def create(
        cls, services: Services, principal: Principal, session_id: uuid.UUID, *, protocol: str, model: str,
        params: p.SessionParams, worker_id: str, options: hybrid.HybridOptions,
    ) -> SessionRecord:  # fmt: skip
        row = RealtimeSession(
            id=session_id,
            tenant_id=principal.tenant_id,
            status=RealtimeSessionStatus.active.value,
            protocol=protocol,
            model=model,
            parameters=params.model_dump(mode="json", exclude={"session_id", "record"}, exclude_none=True),
            retain_audio=options.retain_audio,
            enhancement=options.enhancement_dict(),
            retention_days=retention.resolve(options.retention_days, services.settings, principal.tenant_id),
            worker_id=worker_id,
            segment_count=0,
            word_count=0,
        )
        async with services.sessionmaker() as db, db.begin():
            db.add(row)
        return cls(services, principal, session_id, options)

    def observe(self, msg: p.ServerMessage) -> None:
        """Account for a message from the worker."""
        if isinstance(msg, p.TranscriptFinal) and msg.text:
            self.segments += 1
            self.words += len(msg.text.split())
        elif isinstance(msg, p.ErrorMessage) and msg.fatal:
            self.error = f"{msg.code}: {msg.message}"
        elif isinstance(msg, p.SessionEnd):
            self.end = msg

    async def enhance(self) -> p.Enhancement:
        """Submit the batch enhancement once, if asked for; the fields to tell the client."""
        enhancement = self.options.enhancement_dict()
        if enhancement is None or self.enhanced:
            return self._enhancement_fields()
        self.enhanced = True
        try:
            self.enhancement_job_id = await hybrid.submit_enhancement(
                self.services, self.principal, self.id, enhancement, self.options.retention_days
            )
            log.info("realtime_session_enhancement_submitted", session_id=str(self.id), job_id=str(self.enhancement_job_id))
        except hybrid.EnhancementRefused as exc:
            self.enhancement_error = str(exc)
        except Exception as exc:  # storage or database trouble: the session itself is fine
            log.warning("realtime_session_enhancement_failed", session_id=str(self.id), exc_info=True)
            self.enhancement_error = f"the enhancement job could not be submitted: {type(exc).__name__}"
        await self._update(enhancement_job_id=self.enhancement_job_id, enhancement_error=self.enhancement_error)
        return self._enhancement_fields()

    def _enhancement_fields(self) -> p.Enhancement:
        if self.enhancement_job_id is not None:
            return {"enhancement_job_id": str(self.enhancement_job_id)}
        if self.enhancement_error is not None:
            return {"enhancement_error": self.enhancement_error}
        return {}

    async def finish(self, status: RealtimeSessionStatus, error: str | None = None) -> None:
        recording_bytes: int | None = None
        duration: float | None = None
        if self.options.retain_audio:
            stored = self.end.recording if self.end is not None else None
            if stored is not None:
                recording_bytes, duration = stored["bytes"], stored["duration"]
            else:  # no session.end: read what the worker managed to store
                manifest = await asyncio.to_thread(recording.read_manifest, self.services.store, str(self.id))
                recording_bytes, duration = (manifest.bytes, manifest.duration) if manifest else (0, 0.0)
        if self.end is not None:
            duration = self.end.stats.audio_seconds
        await self._update(
            status=status.value,
            ended_at=datetime.now(UTC),
            audio_duration=duration,
            recording_bytes=recording_bytes,
            segment_count=self.segments,
            word_count=self.words,
            error=error or self.error,
        )
        log.info("realtime_session_recorded", session_id=str(self.id), status=status.value, audio_seconds=duration)

    async def _update(self, **values: Any) -> None:
        async with self.services.sessionmaker() as db, db.begin():
            await db.execute(update(RealtimeSession).where(RealtimeSession.id == self.id).values(**values))


# -- REST ---------------------------------------------------------------------------


class SessionView(BaseModel):
    id: uuid.UUID
    status: str
    protocol: str
    model: str
    parameters: dict[str, Any]
    retain_audio: bool
    enhancement: dict[str, Any] | None  # the batch options chosen at connect time
    worker_id: str | None
    started_at: datetime
    ended_at: datetime | None
    audio_duration: float | None
    recording_bytes: int | None
    segment_count: int
    word_count: int
    error: str | None
    enhancement_job_id: uuid.UUID | None
    enhancement_error: str | None
    retention_days: int = -1  # days the recording is kept after the session ended (shared.retention)
    purged_at: datetime | None = None  # when the purge removed the recording (the transcript stays)


class SessionList(BaseModel):
    sessions: list[SessionView]
    next_cursor: str | None
    has_more: bool


def view(row: RealtimeSession) -> SessionView:
    return SessionView.model_validate(row, from_attributes=True)


async def load_session(db: AsyncSession, principal: Principal, session_id: str) -> RealtimeSession:
    """The caller's session, or 404: unknown, malformed and other tenants' ids look alike."""
    try:
        parsed = uuid.UUID(session_id)
    except ValueError:
        parsed = None
    row = (
        await db.scalar(
            select(RealtimeSession).where(RealtimeSession.id == parsed, RealtimeSession.tenant_id == principal.tenant_id)
        )
        if parsed
        else None
    )
    if row is None:
        raise ApiError(404, "session_not_found", f"no realtime session {session_id!r}")
    return row


def _not_retained() -> ApiError:
    return ApiError(404, "not_retained", "the session was run with retain_audio=false (enable_logging=false): nothing was stored")


@router.get("", response_model=SessionList)
async def list_sessions(
    principal: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
    status: Annotated[str | None, Query(description="active | completed | interrupted | failed")] = None,
    model: Annotated[str | None, Query()] = None,
    started_after: Annotated[datetime | None, Query(description="ISO 8601 timestamp")] = None,
    started_before: Annotated[datetime | None, Query(description="ISO 8601 timestamp")] = None,
) -> SessionList:
    """The caller's realtime sessions, newest first."""
    query = select(RealtimeSession).where(RealtimeSession.tenant_id == principal.tenant_id)
    if status is not None:
        if status not in RealtimeSessionStatus.__members__:
            raise ApiError(
                400, "invalid_parameter", f"status must be one of {', '.join(RealtimeSessionStatus.__members__)}, not {status!r}"
            )
        query = query.where(RealtimeSession.status == status)
    if model is not None:
        query = query.where(RealtimeSession.model == model)
    for name, value in (("started_after", started_after), ("started_before", started_before)):
        if value is not None and value.tzinfo is None:
            raise ApiError(400, "invalid_parameter", f"{name} needs a timezone, e.g. 2026-01-31T12:00:00Z")
    if started_after is not None:
        query = query.where(RealtimeSession.started_at > started_after)
    if started_before is not None:
        query = query.where(RealtimeSession.started_at < started_before)
    async with services.sessionmaker() as db:
        rows, next_cursor = await newest_first(
            db, query, RealtimeSession.started_at, RealtimeSession.id, cursor=cursor, limit=limit
        )
    return SessionList(sessions=[view(r) for r in rows], next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/{session_id}", response_model=SessionView)
async def get_session(session_id: str, principal: Reader, services: ServicesDep) -> SessionView:
    async with services.sessionmaker() as db:
        return view(await load_session(db, principal, session_id))


@router.get("/{session_id}/transcript")
async def get_session_transcript(session_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    """The finals so far (`text`, and `segments` with times relative to the session start;
    `words` when the session asked for word timestamps)."""
    async with services.sessionmaker() as db:
        row = await load_session(db, principal, session_id)
    if not row.retain_audio:
        raise _not_retained()
    stored = await asyncio.to_thread(recording.read_transcript, services.store, str(row.id))
    body: dict[str, Any] = {"session_id": str(row.id), "text": "", "segments": []}
    body.update(stored or {})
    body["status"] = row.status
    return body


@router.get("/{session_id}/audio", response_class=StreamingResponse, responses={200: {"content": {"audio/wav": {}}}})
async def get_session_audio(session_id: str, principal: Reader, services: ServicesDep) -> StreamingResponse:
    """The recording as WAV (16 kHz mono PCM16): all of it, or what was stored before the
    worker was lost (status `interrupted`), or so far (status `active`)."""
    async with services.sessionmaker() as db:
        row = await load_session(db, principal, session_id)
    if not row.retain_audio:
        raise _not_retained()
    store = services.store
    if row.purged_at is not None:
        raise ApiError(
            404,
            "recording_not_found",
            f"the recording was deleted on {row.purged_at.isoformat()} under the session's retention "
            f"of {row.retention_days} days; its transcript is kept",
        )
    manifest = await asyncio.to_thread(recording.read_manifest, store, str(row.id))
    if manifest is None:
        raise ApiError(404, "recording_not_found", "the session has no recorded audio")

    async def body() -> AsyncIterator[bytes]:
        yield recording.wav_header(manifest.bytes, manifest.sample_rate, manifest.channels)
        for index in range(manifest.chunks):
            yield await asyncio.to_thread(recording.read_chunk, store, str(row.id), index)

    headers = {
        "Content-Length": str(recording.WAV_HEADER_BYTES + manifest.bytes),
        "Content-Disposition": f'attachment; filename="session-{row.id}.wav"',
    }
    return StreamingResponse(body(), media_type="audio/wav", headers=headers)


@router.delete("/{session_id}", status_code=204, response_class=Response)
async def delete_session(session_id: str, principal: Reader, services: ServicesDep) -> Response:
    """Delete an ended session with its recording and transcript. Its enhancement job (a
    batch job with its own copy of the audio) stays; delete it through the batch API."""
    async with services.sessionmaker() as db:
        row = await load_session(db, principal, session_id)
        if row.status == RealtimeSessionStatus.active.value:
            raise ApiError(409, "session_active", "the session is still running; end it before deleting")
        # Storage first: if the row delete then fails, a retry finishes the job.
        removed = await asyncio.to_thread(recording.delete, services.store, str(row.id))
        await db.execute(delete(RealtimeSession).where(RealtimeSession.id == row.id))
        await db.commit()
    log.info("realtime_session_deleted", session_id=str(row.id), objects=removed)
    return Response(status_code=204)
