"""append-only audit log of security-relevant actions

Revision ID: 0006_keys_audit
Revises: 0005_realtime_sessions
Create Date: 2026-12-03

Append-only is enforced by PostgreSQL itself, not only by the code that writes it: a
statement-level trigger refuses every UPDATE, DELETE and TRUNCATE on the table, so a bug
or a compromised gateway cannot rewrite history through the application's connection.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006_keys_audit"
down_revision = "0005_realtime_sessions"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
UUID = pg.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("tenant_id", UUID),
        sa.Column("actor_key_id", UUID),
        sa.Column("resource_type", sa.String(32)),
        sa.Column("resource_id", sa.String(200)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("details", pg.JSONB, server_default="{}", nullable=False),
    )
    op.create_index("ix_audit_events_tenant_id", "audit_events", ["tenant_id", "id"])
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"])
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_events_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
        """
    )


def downgrade() -> None:
    op.drop_table("audit_events")  # drops its trigger with it
    op.execute("DROP FUNCTION audit_events_append_only()")
