"""Enrolling a voice: the sample's voiceprint, made by the diarizer through the normal pipeline.

The gateway has no speaker encoder (no torch), so a sample becomes an internal job
(`JobPurpose.ENROLLMENT`: prepare → diarize, see orchestrator/dag.py) on the caller's
tenant — it counts against the tenant's concurrent jobs like any other, but is never listed,
served or announced as one of its transcriptions. The request waits for it (bounded by
`speaker_enroll_timeout_s`), reads the diarize output's voiceprints and deletes the job with
everything it stored, whatever the outcome; a kept sample is copied out first.

The diarizer runs without a speaker count. It may split one voice into two speakers; the
speakers whose voiceprints are as alike as a match needs (`speaker_match_threshold`) are one
voice here, since a job would name them alike. A sample with several voices enrolls the one
who speaks longest, and the response says how many it heard.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass

import numpy as np
import structlog
from sqlalchemy import delete

from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.services import Services
from gateway.stored_jobs import fence_job
from gateway.submission import submit_job, validate_options
from gateway.uploads import Upload, file_extension
from gateway.waiting import JobVanished, wait_for_job
from shared import catalogue, keys
from shared.catalogue import Stage
from shared.contracts import DiarizeOutput, JobOptions, JobPurpose, Voiceprint
from shared.db import Job, JobStatus

log = structlog.get_logger("gateway.enrollment")

MAX_NAME_CHARS = 64
MAX_SAMPLE_SECONDS = 300.0  # a voiceprint needs seconds of speech, not an hour
# The pipeline's own labels: an enrolled name must never be mistaken for one.
_PIPELINE_LABEL = re.compile(r"^(speaker|channel)_\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    """What the diarizer made of an enrollment sample."""

    voiceprint: Voiceprint  # the enrolled voice's: the longest speaker's
    voices: int  # how many voices the diarizer heard in it
    duration: float  # the sample's length, seconds
    audio_key: str | None  # where the sample is kept (keep_audio), else None


def clean_name(name: str | None) -> str:
    """The name as a transcript label: one line of printable characters, 1 to 64 of them,
    not a pipeline id."""
    cleaned = " ".join((name or "").split())
    if not cleaned.isprintable():  # control characters; PostgreSQL text cannot hold NUL at all
        raise ApiError(400, "invalid_parameter", "name must not contain control characters")
    if not cleaned:
        raise ApiError(400, "invalid_parameter", "name is required: the speaker's name, as transcripts should show it")
    if len(cleaned) > MAX_NAME_CHARS:
        raise ApiError(400, "invalid_parameter", f"name is longer than {MAX_NAME_CHARS} characters")
    if _PIPELINE_LABEL.match(cleaned):
        raise ApiError(400, "invalid_parameter", f"name {cleaned!r} looks like a speaker id the pipeline gives; choose a name")
    return cleaned


def _options(services: Services) -> JobOptions:
    """The internal job's options. A server whose diarizer is missing or makes no
    voiceprints cannot enroll: say so up front."""
    # The same check every diarize request gets (a diarizer whose weights are not configured).
    options = validate_options(services.settings, model=None, language=None, speaker_detection="diarize")
    engine_id = {**catalogue.DEFAULT_ENGINES, **services.settings.stage_engines}[Stage.DIARIZE]
    if not catalogue.engine(engine_id).voiceprints:
        makers = ", ".join(e.id for e in catalogue.ENGINES.values() if e.voiceprints)
        raise ApiError(
            400,
            "feature_unavailable",
            f"speaker enrollment is not available on this server: its diarizer {engine_id} makes no voiceprints ({makers} does)",
        )
    return options


async def sample_voiceprint(
    services: Services, principal: Principal, upload: Upload, *, keep_as: uuid.UUID | None = None
) -> Sample:
    """Run the sample through prepare → diarize and return its voiceprint. `keep_as`: the
    speaker id to keep the sample under. Raises ApiError (4xx) for unusable samples."""
    job = await submit_job(services, principal, upload, _options(services), purpose=JobPurpose.ENROLLMENT)
    try:
        if job.audio_duration > MAX_SAMPLE_SECONDS:
            raise ApiError(
                400,
                "sample_too_long",
                f"the sample is {job.audio_duration:.0f} s long; enroll from at most {MAX_SAMPLE_SECONDS:.0f} s of audio",
            )
        output = await _diarized(services, job)
        if not output.voiceprints:
            if not output.turns:
                raise ApiError(400, "no_speech", "the sample has no speech: enroll from a recording of the speaker talking")
            raise ApiError(400, "feature_unavailable", "the diarizer made no voiceprint of this sample")
        voices = group_voices(list(output.voiceprints.values()), services.settings.speaker_match_threshold)
        longest = voices[0]
        minimum = services.settings.speaker_min_speech_s
        if longest.speech_seconds < minimum:
            raise ApiError(
                400,
                "sample_too_short",
                f"the sample has {longest.speech_seconds:.1f} s of the speaker's speech; enrolling needs at least {minimum:g} s",
            )
        audio_key = None
        if keep_as is not None:
            audio_key = keys.speaker_sample(keep_as, file_extension(job.audio_filename))
            await asyncio.to_thread(services.store.copy, job.audio_key, audio_key)
        return Sample(voiceprint=longest, voices=len(voices), duration=job.audio_duration, audio_key=audio_key)
    finally:
        await _discard(services, job)


def group_voices(found: list[Voiceprint], threshold: float) -> list[Voiceprint]:
    """The voices among the diarizer's speakers, most speech first: speakers whose
    voiceprints reach `threshold` with a longer one join it (speech-weighted mean)."""
    groups: list[list[Voiceprint]] = []
    for voice in sorted(found, key=lambda v: -v.speech_seconds):
        home = next((g for g in groups if _similarity(g[0], voice) >= threshold), None)
        if home is None:
            groups.append([voice])
        else:
            home.append(voice)
    merged = [_merge(g) for g in groups]
    return sorted(merged, key=lambda v: -v.speech_seconds)


def _similarity(a: Voiceprint, b: Voiceprint) -> float:
    return float(np.dot(a.embedding, b.embedding)) if a.encoder == b.encoder else -1.0


def _merge(group: list[Voiceprint]) -> Voiceprint:
    if len(group) == 1:
        return group[0]
    mean = np.sum([np.asarray(v.embedding) * v.speech_seconds for v in group], axis=0)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    return Voiceprint(
        embedding=[round(float(x), 6) for x in mean],
        encoder=group[0].encoder,
        speech_seconds=round(sum(v.speech_seconds for v in group), 3),
    )


async def _diarized(services: Services, job: Job) -> DiarizeOutput:
    timeout = services.settings.speaker_enroll_timeout_s
    try:
        done = await wait_for_job(services.redis, services.sessionmaker, job.id, timeout)
    except TimeoutError:
        raise ApiError(
            503,
            "enrollment_timeout",
            f"the diarizer did not finish the sample within {timeout:g} s (is a diarize engine running?); try again",
        ) from None
    except JobVanished:
        raise ApiError(409, "enrollment_cancelled", "the sample's job was removed before it finished; try again") from None
    if done.status != JobStatus.completed.value or not done.transcript_key:
        raise ApiError(400, "enrollment_failed", f"the sample could not be diarized: {done.error or done.status}")
    raw = await asyncio.to_thread(services.store.get_bytes, done.transcript_key)
    return DiarizeOutput.model_validate_json(raw)


async def _discard(services: Services, job: Job) -> None:
    """Delete the internal job and everything it stored; a task still queued or running for it
    (the diarizer timed out) is fenced, so it is skipped or its output discarded."""
    job_id = str(job.id)
    await fence_job(services, job.id, "deleted")
    try:
        await asyncio.to_thread(services.store.delete_prefix, keys.job_prefix(job_id))
        async with services.sessionmaker() as db:
            await db.execute(delete(Job).where(Job.id == job.id, Job.purpose == JobPurpose.ENROLLMENT.value))
            await db.commit()
    except Exception:
        # The sample's voiceprint is already read: a leftover internal job costs storage, not correctness.
        log.warning("enrollment_job_not_discarded", job_id=job_id, exc_info=True)
