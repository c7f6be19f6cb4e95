"""Retention: how long a job's audio and a realtime session's recording are kept.

A job or session gets its `retention_days` when it is created: the request's `retention`,
else its tenant's entry in `retention_overrides`, else `retention_days` (the server's
default, -1). -1 keeps the media; 0 removes it right after processing; N removes it N
days after the job finished or the session ended. The purge (orchestrator) removes the
audio and the stage artifacts, keeps the transcript, stamps `purged_at` on the row and
writes an audit event.
"""

from __future__ import annotations

import uuid

from shared.settings import Settings

KEEP = -1
MAX_DAYS = 36_500  # a hundred years: anything longer is "keep" and should say so
# Audit actions of the purge sweeper (gateway.audit lists them for the audit log's readers).
JOB_PURGED = "job.purged"
SESSION_PURGED = "session.purged"


class InvalidRetention(ValueError):
    pass


def parse(value: str | None) -> int | None:
    """A request's `retention` (days, -1 or more), or None when not given."""
    if value is None or not value.strip():
        return None
    try:
        days = int(value.strip())
    except ValueError:
        raise InvalidRetention(f"retention must be a whole number of days (-1 keeps the audio), not {value!r}") from None
    if not KEEP <= days <= MAX_DAYS:
        raise InvalidRetention(f"retention must be between -1 (keep) and {MAX_DAYS} days, not {days}")
    return days


def resolve(requested: int | None, settings: Settings, tenant_id: uuid.UUID) -> int:
    """The retention a new job or session gets."""
    if requested is not None:
        return requested
    override = settings.retention_overrides.get(str(tenant_id))
    return settings.retention_days if override is None else override
