"""The speaker library: `/v1/speakers`, each tenant's enrolled voices.

`POST /v1/speakers` enrolls a named voice from a sample (gateway.enrollment); jobs then
name the speakers that match one (`known_speakers`, ElevenLabs `use_speaker_library`;
gateway.known_speakers). The voiceprint never leaves the server; the sample is kept only
with `keep_audio=true`. Another tenant's ids answer 404 like unknown ones.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import FileResponse

from gateway import audit, forms
from gateway.auth import Principal, require_scope
from gateway.enrollment import clean_name, sample_voiceprint
from gateway.errors import ApiError
from gateway.job_audio import serve_audio
from gateway.pagination import newest_first
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from gateway.uploads import multipart_openapi, receive_upload
from shared import keys
from shared.db import Speaker

log = structlog.get_logger("gateway.speakers")

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 503)}
router = APIRouter(prefix="/v1/speakers", tags=["speakers"], responses=_ERRORS)
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]
Writer = Annotated[Principal, Depends(require_scope("jobs:write"))]


class SpeakerInfo(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    sample_seconds: float  # the sample's length
    speech_seconds: float  # the enrolled voice's speech in it, which the voiceprint averages
    encoder: str  # the speaker encoder that made the voiceprint
    audio_kept: bool  # the sample is stored (keep_audio=true): GET /v1/speakers/{id}/audio


class EnrolledSpeaker(SpeakerInfo):
    voices_in_sample: int  # voices the diarizer heard in the sample; with several, the longest is enrolled
    warnings: list[str]


class SpeakerList(BaseModel):
    speakers: list[SpeakerInfo]
    next_cursor: str | None
    has_more: bool


def _info(row: Speaker) -> SpeakerInfo:
    return SpeakerInfo(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        sample_seconds=row.sample_seconds,
        speech_seconds=row.speech_seconds,
        encoder=row.encoder,
        audio_kept=row.audio_key is not None,
    )


async def _load(db: AsyncSession, principal: Principal, speaker_id: str) -> Speaker:
    """The caller's enrolled voice, or 404: unknown, malformed and other tenants' ids look the same."""
    try:
        parsed = uuid.UUID(speaker_id)
    except ValueError:
        parsed = None
    row = (
        await db.scalar(select(Speaker).where(Speaker.id == parsed, Speaker.tenant_id == principal.tenant_id)) if parsed else None
    )
    if row is None:
        raise ApiError(404, "speaker_not_found", f"no enrolled speaker {speaker_id!r}")
    return row


async def _name_taken(services: Services, principal: Principal, name: str) -> ApiError | None:
    async with services.sessionmaker() as db:
        taken = await db.scalar(select(Speaker.id).where(Speaker.tenant_id == principal.tenant_id, Speaker.name == name))
    if taken is None:
        return None
    return ApiError(409, "speaker_name_taken", f"a speaker called {name!r} is already enrolled ({taken}); delete it first")


@router.post(
    "",
    status_code=201,
    response_model=EnrolledSpeaker,
    openapi_extra=multipart_openapi(
        ["name", "file"],
        {
            "name": {"type": "string", "maxLength": 64, "description": "how transcripts will label the speaker"},
            "file": {"type": "string", "format": "binary", "description": "the speaker talking alone, 3 s of speech or more"},
            "keep_audio": {"type": "boolean", "default": False, "description": "store the sample (default: discarded)"},
        },
    ),
)
async def enroll_speaker(request: Request, principal: Writer, services: ServicesDep) -> EnrolledSpeaker:
    """Enroll a named voice from a sample: jobs with `known_speakers` (or ElevenLabs
    `use_speaker_library=true`) then call the matching speaker by this name."""
    speaker_id = uuid.uuid4()
    async with receive_upload(request, max_bytes=services.settings.max_upload_bytes) as upload:
        name = clean_name(upload.get("name"))
        try:
            keep_audio = forms.get_bool(upload.fields, "keep_audio", False)
        except forms.FieldError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from exc
        if upload.path is None:
            raise ApiError(400, "missing_file", "the request has no 'file' part: a recording of the speaker")
        taken = await _name_taken(services, principal, name)
        if taken is not None:
            raise taken
        sample = await sample_voiceprint(services, principal, upload, keep_as=speaker_id if keep_audio else None)
    voiceprint = sample.voiceprint
    row = Speaker(
        id=speaker_id,
        tenant_id=principal.tenant_id,
        name=name,
        embedding=voiceprint.embedding,
        encoder=voiceprint.encoder,
        sample_seconds=round(sample.duration, 3),
        speech_seconds=voiceprint.speech_seconds,
        audio_key=sample.audio_key,
    )
    try:
        async with services.sessionmaker() as db:
            db.add(row)
            audit.add(
                db,
                audit.SPEAKER_ENROLLED,
                conn=request,
                principal=principal,
                resource_type="speaker",
                resource_id=speaker_id,
                details={"name": name, "audio_kept": keep_audio},
            )
            await db.flush()
            await db.refresh(row)  # created_at
            await db.commit()
    except IntegrityError:
        # Enrolled under the same name meanwhile (the unique constraint decides).
        await asyncio.to_thread(services.store.delete_prefix, keys.speaker_prefix(speaker_id))
        raise await _name_taken(services, principal, name) or ApiError(409, "speaker_name_taken", f"{name!r} is taken") from None
    warnings = []
    if sample.voices > 1:
        warnings.append(
            f"the sample has {sample.voices} voices; enrolled the one who speaks longest"
            f" ({voiceprint.speech_seconds:.1f} s): enroll from a recording of the speaker alone"
        )
    log.info("speaker_enrolled", speaker_id=str(speaker_id), voices=sample.voices, speech_s=voiceprint.speech_seconds)
    return EnrolledSpeaker(**_info(row).model_dump(), voices_in_sample=sample.voices, warnings=warnings)


@router.get("", response_model=SpeakerList)
async def list_speakers(
    principal: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
) -> SpeakerList:
    """The caller's enrolled voices, newest first."""
    query = select(Speaker).where(Speaker.tenant_id == principal.tenant_id)
    async with services.sessionmaker() as db:
        rows, next_cursor = await newest_first(db, query, Speaker.created_at, Speaker.id, cursor=cursor, limit=limit)
    return SpeakerList(speakers=[_info(r) for r in rows], next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/{speaker_id}", response_model=SpeakerInfo)
async def get_speaker(speaker_id: str, principal: Reader, services: ServicesDep) -> SpeakerInfo:
    """One enrolled voice (its voiceprint stays on the server)."""
    async with services.sessionmaker() as db:
        return _info(await _load(db, principal, speaker_id))


@router.get("/{speaker_id}/audio", response_class=FileResponse)
async def get_speaker_audio(speaker_id: str, principal: Reader, services: ServicesDep) -> FileResponse:
    """The sample a voice was enrolled from, when it was kept (keep_audio=true); Range requests answer 206."""
    async with services.sessionmaker() as db:
        row = await _load(db, principal, speaker_id)
    missing = ApiError(404, "audio_not_found", f"the sample of speaker {speaker_id} was not kept (enroll with keep_audio=true)")
    if row.audio_key is None:
        raise missing
    return await serve_audio(services, row.audio_key, f"speaker-{row.id}{PurePosixPath(row.audio_key).suffix}", missing)


@router.delete("/{speaker_id}", status_code=204, response_class=Response)
async def delete_speaker(speaker_id: str, request: Request, principal: Writer, services: ServicesDep) -> Response:
    """Remove an enrolled voice and its kept sample. Jobs already submitted keep the
    voiceprint they were given; new ones can no longer use it."""
    async with services.sessionmaker() as db:
        row = await _load(db, principal, speaker_id)
        # Storage first: if the row delete then fails, a retry finishes it.
        await asyncio.to_thread(services.store.delete_prefix, keys.speaker_prefix(row.id))
        await db.execute(delete(Speaker).where(Speaker.id == row.id))
        audit.add(db, audit.SPEAKER_DELETED, conn=request, principal=principal, resource_type="speaker", resource_id=row.id)
        await db.commit()
    log.info("speaker_deleted", speaker_id=str(row.id))
    return Response(status_code=204)
