"""jobs.created_at index for the console's all-tenants overview

Revision ID: 0007_jobs_created_index
Revises: 0006_keys_audit
Create Date: 2026-11-30

`ix_jobs_tenant_created` serves one tenant's time ranges; the operator's overview of every
tenant (`GET /v1/console/overview` with an admin key) bounds its hourly aggregates by
created_at alone, which that index cannot serve.
"""

from alembic import op

revision = "0007_jobs_created_index"
down_revision = "0006_keys_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created", "jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_created", table_name="jobs")
