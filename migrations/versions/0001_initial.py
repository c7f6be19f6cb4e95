"""tenants, api_keys, jobs, tasks

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", pg.ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("revoked_at", TS),
        sa.Column("last_used_at", TS),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "jobs",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("speaker_detection", sa.String(16), nullable=False),
        sa.Column("parameters", pg.JSONB, nullable=False),
        sa.Column("audio_key", sa.Text, nullable=False),
        sa.Column("audio_filename", sa.Text),
        sa.Column("audio_bytes", sa.BigInteger, nullable=False),
        sa.Column("audio_format", sa.String(64)),
        sa.Column("audio_duration", sa.Float, nullable=False),
        sa.Column("audio_channels", sa.Integer, nullable=False),
        sa.Column("audio_sample_rate", sa.Integer, nullable=False),
        sa.Column("transcript_key", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_at", "id"])
    op.create_table(
        "tasks",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("engine_id", sa.String(64), nullable=False),
        sa.Column("depends_on", pg.ARRAY(sa.String(64)), nullable=False),
        sa.Column("config", pg.JSONB, nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("output_key", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("queued_at", TS),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.UniqueConstraint("job_id", "name"),
    )
    op.create_index("ix_tasks_job_id", "tasks", ["job_id"])


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("jobs")
    op.drop_table("api_keys")
    op.drop_table("tenants")
