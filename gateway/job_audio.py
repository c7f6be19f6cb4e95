"""`GET /v1/audio/transcriptions/{id}/audio`: a job's original upload, for playback, and
`GET .../{id}/audio/redacted`: the same audio with its sensitive entities silenced or beeped.

Served as a file so Range requests work (a browser `<audio>` element seeks with them):
from the filesystem store in place, from S3 through a temporary file removed once the
response is sent.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from gateway.stored_jobs import load_job
from shared import keys, scratch
from shared.db import Job, JobStatus
from shared.storage import FileStore, ObjectNotFound

router = APIRouter(
    prefix="/v1/audio/transcriptions", tags=["batch"], responses={s: {"model": ErrorResponse} for s in (401, 403, 404)}
)
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]

# What browsers expect; mimetypes' own answers differ by platform (audio/x-wav, no opus, ...).
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".weba": "audio/webm",
    ".mka": "audio/x-matroska",
    ".mkv": "video/x-matroska",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".amr": "audio/amr",
    ".wma": "audio/x-ms-wma",
}


def content_type(key: str) -> str:
    extension = PurePosixPath(key).suffix.lower()
    return AUDIO_TYPES.get(extension) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def audio_gone(job: Job) -> str:
    """Why a job's original upload is missing, for every route that needs it."""
    if job.purged_at is not None:
        return (
            f"the audio of job {job.id} was deleted on {job.purged_at.isoformat()} under its retention of "
            f"{job.retention_days} days; its transcript is kept"
        )
    if job.options().enrich.delete_original_audio:
        return f"the original audio of job {job.id} was deleted after redaction as the job asked; the redacted audio is at /audio/redacted"
    return f"the audio of job {job.id} is no longer stored (deleted or past retention)"


async def _local_copy(services: Services, key: str, missing: ApiError) -> tuple[Path, BackgroundTask | None]:
    """A path to the object at `key` and, for a temporary copy, the task that removes it."""
    store = services.store
    if isinstance(store, FileStore):
        try:
            return store.local_path(key), None
        except ObjectNotFound:
            raise missing from None
    fd, name = tempfile.mkstemp(prefix=scratch.prefix(scratch.AUDIO), suffix=PurePosixPath(key).suffix)
    os.close(fd)
    path = Path(name)
    try:
        await asyncio.to_thread(store.get_file, key, path)
    except ObjectNotFound:
        path.unlink(missing_ok=True)
        raise missing from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, BackgroundTask(path.unlink, missing_ok=True)


async def serve_audio(services: Services, key: str, filename: str, missing: ApiError) -> FileResponse:
    """One stored audio object as an inline file response (Range requests answer 206)."""
    path, cleanup = await _local_copy(services, key, missing)
    return FileResponse(
        path, media_type=content_type(key), filename=filename, content_disposition_type="inline", background=cleanup
    )


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {t: {} for t in sorted(set(AUDIO_TYPES.values()))}},
    206: {"description": "the requested range"},
}


@router.get("/{job_id}/audio", response_class=FileResponse, responses=_FILE_RESPONSES)
async def get_job_audio(job_id: str, principal: Reader, services: ServicesDep) -> FileResponse:
    """The job's original upload as received, with `Accept-Ranges: bytes` (Range requests
    answer 206, so players can seek). 404 `audio_not_found` once the audio is gone — past
    retention, or deleted after redaction when the job asked for that."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
    filename = job.audio_filename or PurePosixPath(job.audio_key).name
    return await serve_audio(services, job.audio_key, filename, ApiError(404, "audio_not_found", audio_gone(job)))


@router.get("/{job_id}/audio/redacted", response_class=FileResponse, responses={**_FILE_RESPONSES, 409: {"model": ErrorResponse}})
async def get_job_redacted_audio(job_id: str, principal: Reader, services: ServicesDep) -> FileResponse:
    """The job's audio with every detected entity silenced or beeped (`redact_pii_audio`): a
    16-bit WAV at the original sample rate with all its channels. 404
    `redacted_audio_not_requested` when the job did not ask for it, 409 `job_not_completed`
    until the job has completed, 404 `audio_not_found` once the file is gone."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
    if not job.options().enrich.redact_pii_audio:
        raise ApiError(404, "redacted_audio_not_requested", f"job {job.id} did not ask for audio redaction (redact_pii_audio)")
    if job.status != JobStatus.completed.value:
        raise ApiError(409, "job_not_completed", f"the job is {job.status}; the redacted audio exists once it has completed")
    stem = PurePosixPath(job.audio_filename or "audio").stem
    missing = ApiError(
        404, "audio_not_found", f"the redacted audio of job {job.id} is no longer stored (deleted or past retention)"
    )
    return await serve_audio(services, keys.job_redacted_audio(job.id), f"{stem}.redacted.wav", missing)
