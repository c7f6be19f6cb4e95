"""Accepting a batch job: validate options, probe the audio, store it, record it, announce it.

Shared by every API that submits batch work (native, ElevenLabs, OpenAI), so all of them
refuse bad input the same way and leave the same row and event behind.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass

import structlog

from gateway import ratelimit
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.metrics import JOBS_SUBMITTED, UPLOAD_BYTES
from gateway.services import Services
from gateway.uploads import Upload, file_extension
from shared import catalogue, keys, model_registry, retention, streams
from shared.audio import AudioError, AudioInfo, probe
from shared.catalogue import SpeakerDetection, Stage
from shared.contracts import Event, JobOptions, JobParameters, JobPurpose, SpeakerOptions
from shared.db import Job, JobStatus
from shared.settings import Settings

log = structlog.get_logger("gateway.submission")

MAX_SPEAKERS = 32  # ElevenLabs' num_speakers ceiling
DIARIZATION_THRESHOLD = (0.1, 0.4)  # ElevenLabs' range for diarization_threshold
PIPELINES = ("modular", "integrated")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def validate_options(
    settings: Settings,
    *,
    model: str | None,
    language: str | None,
    speaker_detection: str | None,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    diarization_threshold: float | None = None,
    diarizer: str | None = None,
    align: bool = False,
    pipeline: str | None = None,
) -> JobOptions:
    """Check a request's options and turn them into typed job options.

    Speaker options land in `parameters.diarize` (what the diarize stage receives), engine
    choices in `parameters.engines` (per stage), and `align=True` in `parameters.align`.
    The caller adds what its API alone knows (transcribe options, ElevenLabs options).
    """
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

    given_mode = (speaker_detection or "none").strip().lower()
    try:
        mode = SpeakerDetection(given_mode)
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"speaker_detection must be one of {', '.join(SpeakerDetection)}, not {given_mode!r}"
        ) from None
    parameters = JobParameters()
    speakers = _speaker_options(mode, num_speakers, min_speakers, max_speakers, diarization_threshold)
    if speakers is not None:
        parameters.diarize = speakers
    engines = _engine_choices(settings, mode, diarizer, pipeline, align)
    if engines:
        parameters.engines = engines
    if align:
        parameters.align = True
    return JobOptions(model=entry.name, language=language, speaker_detection=mode, parameters=parameters)


def _speaker_options(
    mode: SpeakerDetection, num: int | None, lowest: int | None, highest: int | None, threshold: float | None
) -> SpeakerOptions | None:
    given = {"num_speakers": num, "min_speakers": lowest, "max_speakers": highest, "diarization_threshold": threshold}
    given = {k: v for k, v in given.items() if v is not None}
    if given and mode != SpeakerDetection.DIARIZE:
        raise ApiError(400, "invalid_parameter", f"{', '.join(given)} need speaker_detection=diarize (or diarize=true)")
    for name in ("num_speakers", "min_speakers", "max_speakers"):
        value = given.get(name)
        if value is not None and not (isinstance(value, int) and 1 <= value <= MAX_SPEAKERS):
            raise ApiError(400, "invalid_parameter", f"{name} must be an integer from 1 to {MAX_SPEAKERS}, not {value!r}")
    if num is not None and (lowest is not None or highest is not None):
        raise ApiError(
            400,
            "invalid_parameter",
            "num_speakers fixes the count; min_speakers/max_speakers bound a detected count: give one or the other",
        )
    if lowest is not None and highest is not None and lowest > highest:
        raise ApiError(400, "invalid_parameter", f"min_speakers ({lowest}) is greater than max_speakers ({highest})")
    if threshold is not None:
        low, high = DIARIZATION_THRESHOLD
        if not low <= threshold <= high:
            raise ApiError(400, "invalid_parameter", f"diarization_threshold must be between {low} and {high}, not {threshold}")
        if num is not None:
            raise ApiError(400, "invalid_parameter", "diarization_threshold only applies when num_speakers is not set")
    if not given:
        return None
    options = {"num_speakers": num, "min_speakers": lowest, "max_speakers": highest, "threshold": threshold}
    return SpeakerOptions(**{k: v for k, v in options.items() if v is not None})


def _engine_choices(
    settings: Settings, mode: SpeakerDetection, diarizer: str | None, pipeline: str | None, align: bool
) -> dict[Stage, str]:
    engines: dict[Stage, str] = {}
    if pipeline is not None:
        if pipeline not in PIPELINES:
            raise ApiError(400, "invalid_parameter", f"pipeline must be one of {', '.join(PIPELINES)}, not {pipeline!r}")
        if pipeline == "integrated":
            if mode == SpeakerDetection.PER_CHANNEL:
                raise ApiError(
                    400, "invalid_parameter", "pipeline=integrated transcribes one mixed-down track; it cannot run per_channel"
                )
            engines[Stage.TRANSCRIBE] = catalogue.integrated_engines()[0]
    if diarizer is not None:
        if mode != SpeakerDetection.DIARIZE:
            raise ApiError(400, "invalid_parameter", "diarizer needs speaker_detection=diarize (or diarize=true)")
        diarizers = catalogue.engines_for(Stage.DIARIZE, selectable=True)
        if diarizer not in diarizers:
            raise ApiError(400, "invalid_parameter", f"diarizer must be one of {', '.join(diarizers)}, not {diarizer!r}")
        engines[Stage.DIARIZE] = diarizer
    # Stages whose engines need weights this server may not have: refuse up front rather
    # than queue work nobody can do.
    effective = {**catalogue.DEFAULT_ENGINES, **settings.stage_engines, **engines}
    needed = [Stage.DIARIZE] if mode == SpeakerDetection.DIARIZE else []
    if align:
        needed.append(Stage.ALIGN)
    for stage in needed:
        missing = catalogue.engine(effective[stage]).unconfigured(settings)
        if missing is not None:
            hint = "; omit diarizer to use the default" if stage == Stage.DIARIZE and diarizer else ""
            raise ApiError(400, "feature_unavailable", f"{stage} is not available on this server: {missing}{hint}")
    return engines


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


async def submit_job(
    services: Services,
    principal: Principal,
    upload: Upload,
    options: JobOptions,
    *,
    source_session_id: uuid.UUID | None = None,
    purpose: JobPurpose = JobPurpose.TRANSCRIPTION,
    retention_days: int | None = None,
) -> Job:
    """Store the upload and create a pending job; returns the committed row.
    `source_session_id`: the realtime session whose recording this is (hybrid mode);
    `retention_days`: what the request asked for (None: the tenant's default)."""
    info = await probe_upload(upload, services.settings)
    if options.speaker_detection == SpeakerDetection.PER_CHANNEL and info.channels < 2:
        raise ApiError(
            400, "invalid_parameter", "speaker_detection=per_channel needs audio with at least two channels; this file is mono"
        )

    # Validation is done: only now may the tenant's concurrent-jobs limit refuse (429), and
    # before the upload is stored. `claim_job_slot` below is the exact check.
    await ratelimit.check_job_slot(services, principal.tenant_id)

    job_id = uuid.uuid4()
    audio_key = keys.job_audio(job_id, file_extension(upload.filename))
    assert upload.path is not None  # probe_upload refuses an upload without a file
    await asyncio.to_thread(services.store.put_file, audio_key, upload.path)
    audio = StoredAudio(
        key=audio_key,
        filename=upload.filename,
        bytes=upload.size,
        format=info.format,
        duration=info.duration,
        channels=info.channels,
        sample_rate=info.sample_rate,
    )
    job = await record_job(
        services, principal, job_id, audio, options,
        source_session_id=source_session_id, purpose=purpose, retention_days=retention_days,
    )  # fmt: skip
    UPLOAD_BYTES.inc(upload.size)
    return job


@dataclass(frozen=True)
class StoredAudio:
    """A job's audio, already in storage under the job's prefix."""

    key: str
    filename: str | None
    bytes: int
    format: str | None
    duration: float
    channels: int
    sample_rate: int


async def record_job(
    services: Services,
    principal: Principal,
    job_id: uuid.UUID,
    audio: StoredAudio,
    options: JobOptions,
    *,
    source_session_id: uuid.UUID | None = None,
    purpose: JobPurpose = JobPurpose.TRANSCRIPTION,
    retention_days: int | None = None,
) -> Job:
    """Create the pending job for audio stored under `job_id`'s prefix and announce it.
    Shared by uploads and re-runs (gateway.job_actions), so both claim a slot the same way."""
    job = Job(
        id=job_id,
        tenant_id=principal.tenant_id,
        status=JobStatus.pending.value,
        model=options.model,
        language=options.language,
        speaker_detection=options.speaker_detection.value,
        parameters=options.parameters.stored(),
        audio_key=audio.key,
        audio_filename=audio.filename,
        audio_bytes=audio.bytes,
        audio_format=audio.format,
        audio_duration=audio.duration,
        audio_channels=audio.channels,
        audio_sample_rate=audio.sample_rate,
        source_session_id=source_session_id,
        purpose=purpose.value,
        retention_days=retention.resolve(retention_days, services.settings, principal.tenant_id),
    )
    try:
        async with services.sessionmaker() as db:
            await ratelimit.claim_job_slot(db, services.settings, principal.tenant_id)
            db.add(job)
            await db.flush()
            await db.refresh(job)  # load server defaults (created_at)
            await db.commit()
    except BaseException:
        # Nothing references the object without the row; do not leave it behind.
        await asyncio.to_thread(services.store.delete_prefix, keys.job_prefix(job_id))
        raise

    JOBS_SUBMITTED.labels(options.model).inc()
    try:
        await streams.publish(services.redis, keys.EVENTS_STREAM, Event(type="job.created", job_id=str(job_id)).model_dump())
    except Exception as exc:
        # The row is committed, so the job is not lost: the orchestrator's reconciler finds it.
        log.warning("job_created_event_failed", job_id=str(job_id), error=f"{type(exc).__name__}: {exc}")
    log.info("job_submitted", job_id=str(job_id), model=options.model, bytes=audio.bytes, duration=round(audio.duration, 3))
    return job
