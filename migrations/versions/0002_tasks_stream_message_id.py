"""tasks.stream_message_id: lets the reconciler find ready tasks whose stream message was lost

Revision ID: 0002_tasks_stream_msg
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tasks_stream_msg"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("stream_message_id", sa.String(64)))


def downgrade() -> None:
    op.drop_column("tasks", "stream_message_id")
