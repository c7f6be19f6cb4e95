"""SQLAlchemy 2 async models and session factory. PostgreSQL is the source of truth."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from functools import lru_cache

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.contracts import JobParameters, JobPurpose
from shared.settings import get_settings


class JobStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.completed, JobStatus.failed, JobStatus.cancelled)


class TaskStatus(enum.StrEnum):
    pending = "pending"  # waiting on dependencies
    ready = "ready"  # enqueued on its engine stream
    running = "running"
    completed = "completed"
    failed = "failed"
    skipped = "skipped"  # never ran: job cancelled or failed first


class Base(DeclarativeBase):
    pass


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell keys apart in listings
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the full key
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_created", "created_at"),
        # The jobs list's filters (migration 0008, gateway/job_filters.py).
        Index("ix_jobs_tenant_status_created", "tenant_id", "status", "created_at", "id"),
        Index("ix_jobs_tenant_model_created", "tenant_id", "model", "created_at", "id"),
        Index("ix_jobs_tenant_speakers_created", "tenant_id", "speaker_detection", "created_at", "id"),
        Index(
            "ix_jobs_filename_trgm", "audio_filename", postgresql_using="gin", postgresql_ops={"audio_filename": "gin_trgm_ops"}
        ),
        Index("ix_jobs_purge_due", "completed_at", postgresql_where=text("purged_at IS NULL AND retention_days >= 0")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending.value, index=True)
    model: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    speaker_detection: Mapped[str] = mapped_column(String(16), default="none")
    parameters: Mapped[dict] = mapped_column(JSONB, default=dict)  # JobParameters.stored()
    audio_key: Mapped[str] = mapped_column(Text)
    audio_filename: Mapped[str | None] = mapped_column(Text)
    audio_bytes: Mapped[int] = mapped_column(BigInteger)
    audio_format: Mapped[str | None] = mapped_column(String(64))
    audio_duration: Mapped[float] = mapped_column(Float)
    audio_channels: Mapped[int] = mapped_column(Integer)
    audio_sample_rate: Mapped[int] = mapped_column(Integer)
    transcript_key: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # Problems that did not fail the job (e.g. an optional stage failed), shown to users.
    warnings: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # JobPurpose: user jobs are "transcription"; "enrollment" jobs are internal (speaker library).
    purpose: Mapped[str] = mapped_column(
        String(16), default=JobPurpose.TRANSCRIPTION.value, server_default=JobPurpose.TRANSCRIPTION.value
    )
    # Hybrid mode: the realtime session whose recording this job enhances.
    source_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("realtime_sessions.id", ondelete="SET NULL", use_alter=True), index=True
    )
    # shared.retention: days the audio is kept after the job finishes (-1 forever, 0 none);
    # purged_at is when the purge sweeper removed it (the transcript stays).
    retention_days: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def options(self) -> JobParameters:
        return JobParameters.model_validate(self.parameters or {})


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))  # unique node name in the DAG, e.g. "transcribe_ch1"
    stage: Mapped[str] = mapped_column(String(32))  # prepare | transcribe | merge | ...
    engine_id: Mapped[str] = mapped_column(String(64))
    depends_on: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    config: Mapped[dict] = mapped_column(JSONB, default=dict)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.pending.value)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    output_key: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # Id of the engine-stream message for the current enqueue; the reconciler re-publishes
    # a ready task whose message is gone (Redis restarted or flushed).
    stream_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RealtimeSessionStatus(enum.StrEnum):
    active = "active"
    completed = "completed"  # ended by the client (end message or close)
    interrupted = "interrupted"  # the worker died or shut down under it
    failed = "failed"  # ended by an error (transcriber failure, lag, idle timeout)


class RealtimeSession(Base):
    """One realtime session, written by the gateway: created at allocation, finished when
    the session ends on any path. The audio and finals live in object storage under
    `sessions/{id}/` (see shared.realtime.recording) unless the client opted out."""

    __tablename__ = "realtime_sessions"
    __table_args__ = (
        Index("ix_realtime_sessions_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_realtime_sessions_purge_due", "ended_at", postgresql_where=text("purged_at IS NULL AND retention_days >= 0")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=RealtimeSessionStatus.active.value, index=True)
    protocol: Mapped[str] = mapped_column(String(16))  # native | elevenlabs
    model: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict] = mapped_column(JSONB, default=dict)  # the session's native parameters
    retain_audio: Mapped[bool] = mapped_column(Boolean)
    # Hybrid mode: the batch options chosen at connect time (None: no enhancement).
    enhancement: Mapped[dict | None] = mapped_column(JSONB)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    audio_duration: Mapped[float | None] = mapped_column(Float)
    recording_bytes: Mapped[int | None] = mapped_column(BigInteger)  # PCM bytes stored
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    enhancement_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    enhancement_error: Mapped[str | None] = mapped_column(Text)
    # shared.retention, as for jobs: the recording (not the transcript) goes after this.
    retention_days: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEndpoint(Base):
    """A tenant's registered webhook URL. The secret is kept in clear: it signs deliveries."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(Text)  # whsec_<base64>
    disabled_reason: Mapped[str | None] = mapped_column(Text)  # why delivery turned it off (410 Gone)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    """The outbox: one event for one endpoint, written in the transaction that finished the job."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("job_id", "endpoint_id", "event"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Kept when the job is deleted so the history stays; a delivery not yet built then fails.
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    event: Mapped[str] = mapped_column(String(32))  # job.completed | job.failed | job.cancelled
    format: Mapped[str] = mapped_column(String(16))  # native | elevenlabs
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    # Built on the first attempt and frozen, so every retry sends the same body.
    payload: Mapped[dict | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the delivery history users see."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)  # the first bytes, for debugging receivers


class Speaker(Base):
    """An enrolled voice of a tenant's speaker library (POST /v1/speakers): a name and the
    voiceprint the diarizer made from a sample. The sample itself is kept only when asked."""

    __tablename__ = "speakers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_speakers_tenant_name"),
        Index("ix_speakers_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[list[float]] = mapped_column(ARRAY(Float))  # unit norm
    encoder: Mapped[str] = mapped_column(String(64))  # the speaker encoder that made the embedding
    sample_seconds: Mapped[float] = mapped_column(Float)  # the sample's duration
    speech_seconds: Mapped[float] = mapped_column(Float)  # the speech the voiceprint was averaged over
    audio_key: Mapped[str | None] = mapped_column(Text)  # the sample, when kept (keep_audio=true)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEvent(Base):
    """One security-relevant action. Append-only: a trigger (migration 0006) refuses UPDATE,
    DELETE and TRUNCATE. No foreign keys, so the record outlives the tenant, key or job it
    names. Never holds a secret: keys and tokens appear by id and prefix only."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_id", "tenant_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)  # also the cursor
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(64))  # e.g. key.created, auth.failed, job.deleted
    outcome: Mapped[str] = mapped_column(String(16), default="success")  # success | failure
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # whose resource or key
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the key that acted
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs from users and select the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@lru_cache
def get_engine() -> AsyncEngine:
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("DALSTON_DATABASE_URL is not set (run `dalston up` to start embedded PostgreSQL)")
    return create_async_engine(async_url(settings.database_url), pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(get_engine(), expire_on_commit=False)
