"""retention: how long a job's audio and a session's recording are kept, and when they went

Revision ID: 0010_retention
Revises: 0009_speakers
Create Date: 2026-12-02

`retention_days` is resolved when the job is submitted or the session opens (the request's
`retention`, else the tenant's default, else the server's): -1 keeps the media, 0 removes
it right after processing, N removes it N days after the job finished or the session
ended. The orchestrator's purge sweeper removes it (the transcript stays) and writes
`purged_at`. Rows from before this migration keep their media (-1). Partial indexes hold
only the rows still waiting for a purge, so the sweeper's query stays small.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_retention"
down_revision = "0009_speakers"
branch_labels = None
depends_on = None

TABLES = {"jobs": "completed_at", "realtime_sessions": "ended_at"}


def upgrade() -> None:
    for table, finished in TABLES.items():
        op.add_column(table, sa.Column("retention_days", sa.Integer, server_default="-1", nullable=False))
        op.add_column(table, sa.Column("purged_at", sa.DateTime(timezone=True)))
        op.create_index(
            f"ix_{table}_purge_due",
            table,
            [finished],
            postgresql_where=sa.text("purged_at IS NULL AND retention_days >= 0"),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_purge_due", table_name=table)
        op.drop_column(table, "purged_at")
        op.drop_column(table, "retention_days")
