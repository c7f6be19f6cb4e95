"""Acting on a finished job: name its speakers, run it again.

`PUT /v1/audio/transcriptions/{id}/speakers` stores display names for the transcript's
speaker ids in `jobs.parameters.speaker_names`. The names live in the job row, not in the
stored transcript: the transcript stays what the pipeline wrote (its ids can always be
renamed again or reset), the row update is transactional (two renames cannot lose each
other's names, the audit row commits with it), and `gateway.stored_jobs.load_transcript`,
which every reader goes through, applies them, so the job detail, every export and the
ElevenLabs/OpenAI GETs show the same names.

`POST /v1/audio/transcriptions/{id}/rerun` creates a new job from the stored audio (copied
within storage, never re-uploaded) with the source job's stored options.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import PurePosixPath
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gateway import audit, known_speakers, ratelimit
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.job_audio import audio_gone
from gateway.jobs import job_detail, load_detail
from gateway.schemas import ErrorResponse, JobDetail
from gateway.services import ServicesDep
from gateway.stored_jobs import load_job, load_transcript, speaker_ids
from gateway.submission import StoredAudio, record_job
from shared import keys, model_registry
from shared.catalogue import SpeakerDetection
from shared.contracts import JobOptions, JobParameters
from shared.db import JobStatus
from shared.storage import ObjectNotFound

log = structlog.get_logger("gateway.job_actions")

MAX_SPEAKER_NAME_CHARS = 64

router = APIRouter(
    prefix="/v1/audio/transcriptions",
    tags=["batch"],
    responses={status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 429)},
)
Writer = Annotated[Principal, Depends(require_scope("jobs:write"))]


class SpeakerNames(BaseModel):
    """Names for some of a job's speakers; speakers left out keep theirs, null resets one to its id."""

    names: dict[str, str | None] = Field(
        description="speaker id as the pipeline wrote it (speaker_0, channel_1) → name, or null to remove the name",
        examples=[{"speaker_0": "Margaret", "speaker_1": None}],
    )


def _clean_name(speaker: str, name: str | None) -> str | None:
    if name is None:
        return None
    cleaned = " ".join(name.split())  # no line breaks or tabs inside subtitle and document lines
    if not cleaned:
        raise ApiError(400, "invalid_parameter", f"the name for {speaker!r} is empty; send null to remove a name")
    if len(cleaned) > MAX_SPEAKER_NAME_CHARS:
        raise ApiError(400, "invalid_parameter", f"the name for {speaker!r} is longer than {MAX_SPEAKER_NAME_CHARS} characters")
    return cleaned


@router.put("/{job_id}/speakers", response_model=JobDetail)
async def rename_speakers(
    job_id: str, body: SpeakerNames, request: Request, principal: Writer, services: ServicesDep
) -> JobDetail:
    """Name a completed job's speakers. Every reader of the transcript shows the names."""
    if not body.names:
        raise ApiError(400, "invalid_parameter", "names is empty: give at least one speaker id")
    async with services.sessionmaker() as db:
        async with db.begin():
            job = await load_job(db, principal, job_id, for_update=True)
            if job.status != JobStatus.completed.value:
                raise ApiError(409, "job_not_completed", f"the job is {job.status}; speakers can be named once it has completed")
            transcript = await load_transcript(services, job, named=False)
            if transcript is None:
                raise ApiError(404, "transcript_not_found", f"the transcript of job {job_id} is missing from storage")
            ids = speaker_ids(transcript)
            unknown = [s for s in body.names if s not in ids]
            if unknown:
                known = ", ".join(ids) if ids else "none: the job ran without speaker detection"
                raise ApiError(400, "unknown_speaker", f"no speaker {unknown[0]!r} in this transcript; its speakers: {known}")

            parameters = job.options()
            names = dict(parameters.speaker_names)
            for speaker, given in body.names.items():
                name = _clean_name(speaker, given)
                if name is None or name == speaker:
                    names.pop(speaker, None)
                else:
                    names[speaker] = name
            # Each label must still tell one speaker from another (and map back to one id),
            # with the pipeline's names (enrolled voices, the LLM's) under the user's.
            shown = {**transcript.speaker_names, **names}
            labels = [shown.get(s, s) for s in ids]
            taken = sorted({label for label in labels if labels.count(label) > 1})
            if taken:
                raise ApiError(
                    400, "duplicate_speaker_name", f"two speakers would both be called {taken[0]!r}; names must differ"
                )

            parameters.speaker_names = names
            job.parameters = parameters.stored()
            audit.add(
                db,
                audit.JOB_SPEAKERS_RENAMED,
                conn=request,
                principal=principal,
                resource_type="job",
                resource_id=job.id,
                details={"names": body.names},
            )
        log.info("job_speakers_renamed", job_id=str(job.id), speakers=len(names))
        detail = await load_detail(services, db, job)
    return detail


@router.post("/{job_id}/rerun", status_code=201, response_model=JobDetail)
async def rerun_job(job_id: str, request: Request, principal: Writer, services: ServicesDep) -> JobDetail:
    """A new job from this job's stored audio with the same model, language and options."""
    async with services.sessionmaker() as db:
        source = await load_job(db, principal, job_id)
    if not JobStatus(source.status).terminal:
        raise ApiError(409, "job_not_terminal", f"the job is {source.status}; re-run it once it has finished")
    try:
        model_registry.resolve(source.model, services.settings)
    except model_registry.UnknownModel as exc:
        raise ApiError(400, "unknown_model", f"the job's model is no longer served: {exc}") from exc

    # The new run's speakers are its own: the source's names stay behind.
    parameters = JobParameters.model_validate({k: v for k, v in (source.parameters or {}).items() if k != "speaker_names"})
    if parameters.diarize.known_speakers:
        # A new job: the library as it is now (deleted voices are not used again).
        parameters.diarize = parameters.diarize.model_copy(
            update={"known_speakers": await known_speakers.current(services, principal, parameters.diarize.known_speakers)}
        )
    options = JobOptions(
        model=source.model,
        language=source.language,
        speaker_detection=SpeakerDetection(source.speaker_detection),
        parameters=parameters,
    )
    # As for an upload: the concurrent-jobs limit refuses (429) before anything is stored.
    await ratelimit.check_job_slot(services, principal.tenant_id)

    new_id = uuid.uuid4()
    audio_key = keys.job_audio(new_id, PurePosixPath(source.audio_key).suffix)
    try:
        await asyncio.to_thread(services.store.copy, source.audio_key, audio_key)
    except ObjectNotFound:
        raise ApiError(404, "audio_not_found", f"{audio_gone(source)}; upload the file again") from None
    audio = StoredAudio(
        key=audio_key,
        filename=source.audio_filename,
        bytes=source.audio_bytes,
        format=source.audio_format,
        duration=source.audio_duration,
        channels=source.audio_channels,
        sample_rate=source.audio_sample_rate,
    )
    job = await record_job(services, principal, new_id, audio, options)
    await audit.record(
        services.sessionmaker,
        audit.JOB_RERUN,
        conn=request,
        principal=principal,
        resource_type="job",
        resource_id=job.id,
        details={"source_job_id": str(source.id)},
    )
    log.info("job_rerun", job_id=str(job.id), source_job_id=str(source.id))
    return job_detail(job, [], None)
