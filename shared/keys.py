"""Every object-storage key and Redis key the services share, spelled once.

Storage layout:

    jobs/{job_id}/audio/original{ext}          the upload, as received
    jobs/{job_id}/tasks/{task_name}/...        each task's artifacts; output.json is its result
    sessions/{session_id}/audio/chunk-NNNNN.pcm  realtime recording, 16 kHz mono PCM16
    sessions/{session_id}/audio/manifest.json
    sessions/{session_id}/transcript.json      the finals so far
    speakers/{speaker_id}/sample{ext}          an enrolled voice's sample, when kept

Redis keys all start with `dalston:`.
"""

from __future__ import annotations

from typing import Literal

# --- object storage -----------------------------------------------------------------


JOBS_ROOT = "jobs/"  # every job's prefix is under it, named by the job id
SESSIONS_ROOT = "sessions/"  # every realtime session's, named by the session id


def job_prefix(job_id: object) -> str:
    return f"{JOBS_ROOT}{job_id}/"


def job_audio(job_id: object, extension: str) -> str:
    return f"jobs/{job_id}/audio/original{extension}"


def job_redacted_audio(job_id: object) -> str:
    """The audio with its sensitive entities silenced or beeped (the redact stage's artifact)."""
    return f"jobs/{job_id}/audio/redacted.wav"


def task_prefix(job_id: object, task_name: str) -> str:
    return f"jobs/{job_id}/tasks/{task_name}/"


def task_output(output_prefix: str) -> str:
    return f"{output_prefix}output.json"


def speaker_prefix(speaker_id: object) -> str:
    return f"speakers/{speaker_id}/"


def speaker_sample(speaker_id: object, extension: str) -> str:
    """An enrolled voice's sample (POST /v1/speakers with keep_audio=true), as uploaded."""
    return f"speakers/{speaker_id}/sample{extension}"


def session_prefix(session_id: object) -> str:
    return f"{SESSIONS_ROOT}{session_id}/"


def session_audio_prefix(session_id: object) -> str:
    """The recording: its chunks and manifest (what retention removes; the finals stay)."""
    return f"{session_prefix(session_id)}audio/"


def session_chunk(session_id: object, index: int) -> str:
    return f"{session_audio_prefix(session_id)}chunk-{index:05d}.pcm"


def session_manifest(session_id: object) -> str:
    return f"{session_audio_prefix(session_id)}manifest.json"


def session_transcript(session_id: object) -> str:
    return f"sessions/{session_id}/transcript.json"


# --- Redis: streams and channels ---------------------------------------------------------

EVENTS_STREAM = "dalston:events"
DLQ_STREAM = "dalston:events:dlq"
ORCHESTRATOR_GROUP = "orchestrators"
ENGINE_GROUP = "engines"


def engine_stream(engine_id: str) -> str:
    return f"dalston:stream:{engine_id}"


def job_done_channel(job_id: object) -> str:
    return f"dalston:job-done:{job_id}"


# Why a job's work is fenced off (the value of its job_cancelled key; older gateways wrote "1").
JobFence = Literal["cancelled", "deleted"]


def job_cancelled(job_id: object) -> str:
    """Set when a job is cancelled or deleted: engines skip its tasks and discard late outputs."""
    return f"dalston:job-cancelled:{job_id}"


def consumer_alive(group: str, consumer: str) -> str:
    """A stream consumer's liveness key, refreshed with a short TTL while its process lives."""
    return f"dalston:consumer:{group}:{consumer}"


# --- Redis: batch engine instances (shared/engine_heartbeat.py) ---------------------------


def engine_instances(engine_id: str) -> str:
    """SET of the instance ids that heartbeat for `engine_id` (pruned when their hash expired)."""
    return f"dalston:engine:{engine_id}:instances"


def engine_instance(engine_id: str, instance_id: str) -> str:
    """HASH of one running engine process; expires unless it heartbeats."""
    return f"dalston:engine:{engine_id}:instance:{instance_id}"


# --- Redis: realtime pool -------------------------------------------------------------------

REALTIME_WORKERS = "dalston:realtime:workers"
REALTIME_WORKER_PREFIX = "dalston:realtime:worker:"
REALTIME_LEASES_SUFFIX = ":leases"
REALTIME_SESSION_PREFIX = "dalston:realtime:session:"


def realtime_worker(worker_id: str) -> str:
    return REALTIME_WORKER_PREFIX + worker_id


def realtime_leases(worker_id: str) -> str:
    return REALTIME_WORKER_PREFIX + worker_id + REALTIME_LEASES_SUFFIX


def realtime_session(session_id: object) -> str:
    return REALTIME_SESSION_PREFIX + str(session_id)


# --- Redis: auth and limits ---------------------------------------------------------------


def single_use_token(token_hash: str) -> str:
    return f"dalston:token:{token_hash}"


def console_session(cookie_hash: str) -> str:
    """A console session, named by the sha256 of its cookie (the cookie itself is never stored)."""
    return f"dalston:console-session:{cookie_hash}"


def console_login_failures(client: str) -> str:
    """Failed console logins from one client address in the current throttle window."""
    return f"dalston:console-login-failures:{client}"


def ratelimit_requests(tenant_id: object) -> str:
    return f"dalston:ratelimit:req:{tenant_id}"


def ratelimit_sessions(tenant_id: object) -> str:
    return f"dalston:ratelimit:sessions:{tenant_id}"


def tenant_jobs_lock(tenant_id: object) -> str:
    """The advisory-lock name that serialises a tenant's job-slot claims (PostgreSQL)."""
    return f"dalston:jobs:{tenant_id}"
