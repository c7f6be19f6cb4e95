"""the speaker library (enrolled voices) and jobs.purpose

Revision ID: 0009_speakers
Revises: 0008_jobs_list_filters
Create Date: 2026-12-01

`speakers` holds each tenant's enrolled voices: a name (unique within the tenant, since it
becomes a transcript's speaker label), the voiceprint the diarizer made from the sample
and the encoder that made it. Enrolling runs an internal job through the normal pipeline
(prepare → diarize): `jobs.purpose` tells those jobs from the tenant's transcriptions, so
job lists, webhooks and the console leave them out.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0009_speakers"
down_revision = "0008_jobs_list_filters"
branch_labels = None
depends_on = None

UUID = pg.UUID(as_uuid=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("purpose", sa.String(16), server_default="transcription", nullable=False))
    op.create_table(
        "speakers",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("embedding", pg.ARRAY(sa.Float), nullable=False),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("sample_seconds", sa.Float, nullable=False),
        sa.Column("speech_seconds", sa.Float, nullable=False),
        sa.Column("audio_key", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_speakers_tenant_name"),
    )
    op.create_index("ix_speakers_tenant_created", "speakers", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_speakers_tenant_created", table_name="speakers")
    op.drop_table("speakers")
    op.drop_column("jobs", "purpose")
