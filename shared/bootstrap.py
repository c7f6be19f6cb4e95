"""Schema migration and first-start seeding, run by `dalston up`, `dalston migrate` and compose."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from shared.db import ApiKey, Tenant, get_sessionmaker

DEFAULT_TENANT = "default"
ADMIN_SCOPES = ["admin", "jobs:read", "jobs:write", "realtime", "webhooks"]
KEY_PREFIX = "dk_"


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough to make a stolen table useless.
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    """The first characters, kept in clear to tell keys apart in listings (not enough to guess one)."""
    return key[:10]


def migrate(database_url: str) -> None:
    ini = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"
    cfg = Config(str(ini))
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, "head")


async def seed_admin_key(configured_key: str | None) -> str | None:
    """Make sure an admin key exists. Returns a newly generated key (to print once), else None."""
    async with get_sessionmaker()() as db, db.begin():
        tenant = await db.scalar(select(Tenant).where(Tenant.name == DEFAULT_TENANT))
        if tenant is None:
            tenant = Tenant(name=DEFAULT_TENANT)
            db.add(tenant)
            await db.flush()
        if configured_key:
            digest = hash_key(configured_key)
            if await db.scalar(select(ApiKey).where(ApiKey.key_hash == digest)) is None:
                db.add(_admin_key(tenant, configured_key, "DALSTON_API_KEY"))
            return None
        if await db.scalar(select(func.count()).select_from(ApiKey)):
            return None
        key = generate_key()
        db.add(_admin_key(tenant, key, "generated at first start"))
        return key


def _admin_key(tenant: Tenant, key: str, name: str) -> ApiKey:
    return ApiKey(tenant_id=tenant.id, name=name, prefix=key_prefix(key), key_hash=hash_key(key), scopes=ADMIN_SCOPES)
