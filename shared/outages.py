"""Which dependency an exception says is down: PostgreSQL, Redis or object storage.

Every service meets the same outages: a refused or reset connection, a server restarting
("the database system is starting up", Redis `LOADING`), a pool that cannot hand out a
connection. They are not the request's fault and not a bug, so callers treat them alike:
the gateway answers 503 with `Retry-After` (gateway.errors), workers back off and retry.

The drivers do not agree on how to say it. SQLAlchemy on asyncpg lets a refused connect
escape as a bare `OSError` (`ConnectionRefusedError`, or `FileNotFoundError` for a missing
Unix socket), and the same bare classes come from local files too, so an `OSError` counts
only when the traceback shows which client raised it.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import redis.exceptions
import sqlalchemy.exc


class Dependency(StrEnum):
    DATABASE = "the database"
    REDIS = "Redis"
    STORAGE = "object storage"


# Modules whose frames in a traceback name the dependency a bare OSError came from.
_CLIENT_MODULES = (
    ("asyncpg", Dependency.DATABASE),
    ("sqlalchemy", Dependency.DATABASE),
    ("redis", Dependency.REDIS),
    ("botocore", Dependency.STORAGE),
    ("boto3", Dependency.STORAGE),
    ("s3transfer", Dependency.STORAGE),
    ("urllib3", Dependency.STORAGE),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what caused it, and the members of exception groups, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def _raised_by(exc: BaseException) -> Dependency | None:
    """The client library the traceback went through, innermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    for module in reversed(frames):
        top = module.split(".", 1)[0]
        for name, dependency in _CLIENT_MODULES:
            if top == name:
                return dependency
    return None


def _asyncpg_outage(exc: BaseException) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a core dependency
        return False
    return isinstance(
        exc,
        (
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down
            asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown
            asyncpg.exceptions.TooManyConnectionsError,
            asyncpg.exceptions.PostgresConnectionError,
        ),
    )


def _storage_outage(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - boto3 is a core dependency
        return False
    # Connect and read timeouts, refused and reset connections to the S3 endpoint.
    return isinstance(exc, HTTPClientError)


def _one(exc: BaseException) -> Dependency | None:
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return Dependency.REDIS  # BusyLoadingError (replaying the AOF) is a ConnectionError too
    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)):
        return Dependency.DATABASE
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return Dependency.DATABASE
    if _asyncpg_outage(exc):
        return Dependency.DATABASE
    if _storage_outage(exc):
        return Dependency.STORAGE
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) and not isinstance(exc, (PermissionError, IsADirectoryError)):
        return _raised_by(exc)
    return None


def unavailable(exc: BaseException) -> Dependency | None:
    """The dependency `exc` (or what caused it) says is unreachable; None for any other error."""
    for linked in _chain(exc):
        found = _one(linked)
        if found is not None:
            return found
    return None
