"""The audit log: an append-only record of security-relevant actions.

Actions are written with `add` inside the transaction that performs them (a key created,
a job deleted), so the action and its record commit together, or with `record` in a
transaction of their own when there is nothing else to commit (a failed authentication).
PostgreSQL refuses UPDATE/DELETE/TRUNCATE on the table (migration 0006_keys_audit).

Never pass a secret in `details`: keys and tokens are named by id and prefix. `_scrub`
replaces anything that still looks like one, as a second line of defence.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from shared import retention
from shared.db import AuditEvent

if TYPE_CHECKING:
    from gateway.auth import Principal

log = structlog.get_logger("gateway.audit")

# The actions written today; readers filter on these names.
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
TENANT_CREATED = "tenant.created"
AUTH_FAILED = "auth.failed"
TOKEN_ISSUED = "token.issued"
JOB_DELETED = "job.deleted"
JOB_SPEAKERS_RENAMED = "job.speakers_renamed"
JOB_RERUN = "job.rerun"
TRANSCRIPT_EXPORTED = "transcript.exported"
WEBHOOK_CREATED = "webhook.created"
WEBHOOK_DELETED = "webhook.deleted"
WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
WEBHOOK_REDELIVERED = "webhook.redelivered"
WEBHOOK_UPDATED = "webhook.updated"
SPEAKER_ENROLLED = "speaker.enrolled"
SPEAKER_DELETED = "speaker.deleted"
CONSOLE_LOGIN = "console.login"
CONSOLE_LOGOUT = "console.logout"
CONSOLE_TENANT_SWITCHED = "console.tenant_switched"
# Written by the orchestrator's purge sweeper when retention removes a job's audio or a
# session's recording (shared.retention).
JOB_PURGED = retention.JOB_PURGED
SESSION_PURGED = retention.SESSION_PURGED

# Prefixes of every secret Dalston issues: API keys, single-use tokens, webhook secrets.
SECRET_PREFIXES = ("dk_", "sut_", "whsec_")
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTED if value.startswith(SECRET_PREFIXES) and len(value) > 16 else value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def event(
    action: str,
    *,
    conn: HTTPConnection | None = None,
    principal: Principal | None = None,
    tenant_id: uuid.UUID | None = None,
    resource_type: str | None = None,
    resource_id: str | uuid.UUID | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit row for `action`. The tenant defaults to the acting principal's."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return AuditEvent(
        action=action,
        outcome=outcome,
        tenant_id=tenant_id or (principal.tenant_id if principal else None),
        actor_key_id=principal.key_id if principal else None,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        request_id=request_id,
        client_ip=conn.client.host if conn is not None and conn.client else None,
        details=_scrub(details or {}),
    )


def add(db: AsyncSession, action: str, **fields: Any) -> None:
    """Record `action` in the caller's transaction: it commits (or not) with the action."""
    db.add(event(action, **fields))


async def record(sessionmaker: async_sessionmaker[AsyncSession], action: str, **fields: Any) -> None:
    """Record `action` in a transaction of its own. A database failure is logged, not
    raised: it must not turn the answer the caller is owed (e.g. a 401) into a 500."""
    try:
        async with sessionmaker() as db, db.begin():
            add(db, action, **fields)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("audit_write_failed", action=action, error=type(exc).__name__)
