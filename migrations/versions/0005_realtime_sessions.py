"""realtime session history and the hybrid-mode links between sessions and jobs

Revision ID: 0005_realtime_sessions
Revises: 0004_webhooks
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0005_realtime_sessions"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
UUID = pg.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "realtime_sessions",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("parameters", pg.JSONB, nullable=False),
        sa.Column("retain_audio", sa.Boolean, nullable=False),
        sa.Column("enhancement", pg.JSONB),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("started_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("audio_duration", sa.Float),
        sa.Column("recording_bytes", sa.BigInteger),
        sa.Column("segment_count", sa.Integer, nullable=False),
        sa.Column("word_count", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("enhancement_job_id", UUID, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("enhancement_error", sa.Text),
    )
    op.create_index("ix_realtime_sessions_status", "realtime_sessions", ["status"])
    op.create_index("ix_realtime_sessions_tenant_started", "realtime_sessions", ["tenant_id", "started_at", "id"])
    op.add_column("jobs", sa.Column("source_session_id", UUID, sa.ForeignKey("realtime_sessions.id", ondelete="SET NULL")))
    op.create_index("ix_jobs_source_session_id", "jobs", ["source_session_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_source_session_id", table_name="jobs")
    op.drop_column("jobs", "source_session_id")
    op.drop_table("realtime_sessions")
