"""`GET /v1/audio/transcriptions/{id}/audio`: a job's original upload, for playback.

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
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from gateway.stored_jobs import load_job
from shared.db import Job
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


def _not_found(job: Job) -> ApiError:
    return ApiError(404, "audio_not_found", f"the audio of job {job.id} is no longer stored")


async def _local_copy(services: Services, job: Job) -> tuple[Path, BackgroundTask | None]:
    """A path to the audio and, for a temporary copy, the task that removes it."""
    store = services.store
    if isinstance(store, FileStore):
        try:
            return store.local_path(job.audio_key), None
        except ObjectNotFound:
            raise _not_found(job) from None
    fd, name = tempfile.mkstemp(prefix="dalston-audio-", suffix=PurePosixPath(job.audio_key).suffix)
    os.close(fd)
    path = Path(name)
    try:
        await asyncio.to_thread(store.get_file, job.audio_key, path)
    except ObjectNotFound:
        path.unlink(missing_ok=True)
        raise _not_found(job) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, BackgroundTask(path.unlink, missing_ok=True)


@router.get(
    "/{job_id}/audio",
    response_class=FileResponse,
    responses={200: {"content": {t: {} for t in sorted(set(AUDIO_TYPES.values()))}}, 206: {"description": "the requested range"}},
)
async def get_job_audio(job_id: str, principal: Reader, services: ServicesDep) -> FileResponse:
    """The job's original upload as received, with `Accept-Ranges: bytes` (Range requests
    answer 206, so players can seek). 404 `audio_not_found` once the audio is gone."""
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
    path, cleanup = await _local_copy(services, job)
    filename = job.audio_filename or PurePosixPath(job.audio_key).name
    return FileResponse(
        path, media_type=content_type(job.audio_key), filename=filename, content_disposition_type="inline", background=cleanup
    )
