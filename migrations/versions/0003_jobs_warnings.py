"""jobs.warnings: non-fatal problems reported with the job

Revision ID: 0003_jobs_warnings
Revises: 0002_tasks_stream_msg
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0003_jobs_warnings"
down_revision = "0002_tasks_stream_msg"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("warnings", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    op.drop_column("jobs", "warnings")
