"""Accepting a batch job: validate options, probe the audio, store it, record it, announce it.

Shared by every API that submits batch work (native, ElevenLabs, OpenAI), so all of them
refuse bad input the same way and leave the same row and event behind.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.metrics import JOBS_SUBMITTED, UPLOAD_BYTES
from gateway.services import Services
from gateway.uploads import Upload, file_extension
from shared import model_registry, streams
from shared.audio import AudioError, AudioInfo, probe
from shared.contracts import Event
from shared.db import Job, JobStatus
from shared.settings import Settings

log = structlog.get_logger("gateway.submission")

SPEAKER_DETECTION_MODES = ("none", "diarize", "per_channel")
# Modes the orchestrator can run today; the others are accepted names with a clear refusal.
EXECUTABLE_SPEAKER_DETECTION = ("none", "per_channel")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class JobOptions:
    model: str
    language: str | None = None
    speaker_detection: str = "none"
    parameters: dict[str, Any] = field(default_factory=dict)


def validate_options(settings: Settings, *, model: str | None, language: str | None, speaker_detection: str | None) -> JobOptions:
    try:
        entry = model_registry.resolve(model, settings)
    except model_registry.UnknownModel as exc:
        raise ApiError(400, "unknown_model", str(exc)) from exc

    language = (language or "").strip().lower() or None
    if language == "auto":
        language = None
    if language is not None and not _LANGUAGE.match(language):
        raise ApiError(400, "invalid_language", f"language must be an ISO 639-1 code such as 'en', not {language!r}")
    if language not in (None, "en") and entry.english_only:
        raise ApiError(
            400,
            "unsupported_language",
            f"model {entry.name!r} transcribes English only; language {language!r} needs a multilingual model",
        )

    mode = (speaker_detection or "none").strip().lower()
    if mode not in SPEAKER_DETECTION_MODES:
        raise ApiError(
            400, "invalid_parameter", f"speaker_detection must be one of {', '.join(SPEAKER_DETECTION_MODES)}, not {mode!r}"
        )
    if mode not in EXECUTABLE_SPEAKER_DETECTION:
        raise ApiError(
            400,
            "feature_unavailable",
            f"speaker_detection={mode!r} is not available yet; use one of {', '.join(EXECUTABLE_SPEAKER_DETECTION)}",
        )
    return JobOptions(model=entry.name, language=language, speaker_detection=mode)


async def probe_upload(upload: Upload, settings: Settings) -> AudioInfo:
    if upload.path is None:
        raise ApiError(400, "missing_file", "the request has no 'file' part")
    if upload.size == 0:
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    try:
        info = await asyncio.to_thread(probe, upload.path, max_duration=settings.max_audio_seconds)
    except AudioError as exc:
        raise ApiError(400, "invalid_audio", f"the uploaded file is not usable audio: {exc}") from exc
    if info.duration > settings.max_audio_seconds:
        raise ApiError(413, "audio_too_long", f"the audio is longer than the limit of {settings.max_audio_seconds:g} seconds")
    return info


async def submit_job(services: Services, principal: Principal, upload: Upload, options: JobOptions) -> Job:
    """Store the upload and create a pending job; returns the committed row."""
    info = await probe_upload(upload, services.settings)
    if options.speaker_detection == "per_channel" and info.channels < 2:
        raise ApiError(
            400, "invalid_parameter", "speaker_detection=per_channel needs audio with at least two channels; this file is mono"
        )

    job_id = uuid.uuid4()
    audio_key = f"jobs/{job_id}/audio/original{file_extension(upload.filename)}"
    await asyncio.to_thread(services.store.put_file, audio_key, upload.path)

    job = Job(
        id=job_id,
        tenant_id=principal.tenant_id,
        status=JobStatus.pending.value,
        model=options.model,
        language=options.language,
        speaker_detection=options.speaker_detection,
        parameters=options.parameters,
        audio_key=audio_key,
        audio_filename=upload.filename,
        audio_bytes=upload.size,
        audio_format=info.format,
        audio_duration=info.duration,
        audio_channels=info.channels,
        audio_sample_rate=info.sample_rate,
    )
    try:
        async with services.sessionmaker() as db:
            db.add(job)
            await db.flush()
            await db.refresh(job)  # load server defaults (created_at)
            await db.commit()
    except BaseException:
        # Nothing references the object without the row; do not leave it behind.
        await asyncio.to_thread(services.store.delete_prefix, f"jobs/{job_id}/")
        raise

    JOBS_SUBMITTED.labels(options.model).inc()
    UPLOAD_BYTES.inc(upload.size)
    try:
        await streams.publish(services.redis, streams.EVENTS_STREAM, Event(type="job.created", job_id=str(job_id)).model_dump())
    except Exception:
        # The row is committed, so the job is not lost: the orchestrator's reconciler finds it.
        log.warning("job_created_event_failed", job_id=str(job_id), exc_info=True)
    log.info("job_submitted", job_id=str(job_id), model=options.model, bytes=upload.size, duration=round(info.duration, 3))
    return job
