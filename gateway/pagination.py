"""Keyset pagination for lists ordered newest first by (timestamp, id).

The cursor is opaque to clients: base64url of "timestamp|id" of the last row served.
Keyset (not offset) paging stays correct while rows are inserted and costs one index scan.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gateway.errors import ApiError


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = raw.partition("|")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return at, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc


async def newest_first(
    db: AsyncSession,
    query: Select,
    at: InstrumentedAttribute,
    row_id: InstrumentedAttribute,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """One page of `query`'s rows and the cursor of the next page (None on the last)."""
    if cursor:
        query = query.where(tuple_(at, row_id) < tuple_(*decode_cursor(cursor)))
    rows = list(await db.scalars(query.order_by(at.desc(), row_id.desc()).limit(limit + 1)))
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    last = page[-1]
    return page, encode_cursor(getattr(last, at.key), getattr(last, row_id.key))
