"""`GET /v1/console/settings`: the gateway's effective settings, secrets masked (admin).

Each setting comes with its environment variable and whether it was set (environment, `.env`
or whoever built the Settings) or is the default. A secret's value never leaves this module:
only whether it is set. Secrets are fields typed SecretStr or named like a key, secret,
password or token; a URL's password is masked wherever a URL appears, nested values included.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, SecretBytes, SecretStr

from gateway.auth import ADMIN_SCOPE, Principal, require_scope
from gateway.schemas import ErrorResponse
from gateway.services import ServicesDep
from shared.settings import Settings

router = APIRouter(prefix="/v1/console", tags=["console"], responses={s: {"model": ErrorResponse} for s in (401, 403)})
Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]

MASK = "••••••"
SECRET_NAME = re.compile(r"(^|_)(key|keys|secret|password|passwd|token|credentials?)(_|$)")
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(.*)$", re.DOTALL)
# libpq's ?password=, signed URLs' signatures, ?api_key= and the like.
SECRET_QUERY = re.compile(r"([?&][^=&#]*(?:key|secret|password|passwd|token|signature|credential)[^=&#]*=)[^&#]*", re.IGNORECASE)

# Settings grouped as shared/settings.py lays them out; a field matching no group is shown
# under "Other" (a new setting is never hidden).
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("Infrastructure", ("database_url", "redis_url", "data_dir")),
    ("Object storage", ("storage_backend", "s3_")),
    ("Console", ("console_",)),
    (
        "Gateway",
        (
            "host",
            "port",
            "api_key",
            "max_upload_bytes",
            "max_audio_seconds",
            "max_request_body_bytes",
            "max_query_bytes",
            "elevenlabs_sync_timeout_s",
            "url_fetch_timeout_s",
            "gateway_drain_timeout_s",
        ),
    ),
    ("Models", ("default_model", "models", "model_aliases", "whisper_", "translation_model", "openai_wait_timeout_s")),
    ("Orchestration and engines", ("task_", "reconcile_", "engine_", "stage_engines")),
    ("Speaker detection and alignment", ("pyannote_model", "align_model", "hf_token", "diarize_")),
    ("Rate limits", ("rate_limit_",)),
    ("Webhooks", ("allow_private_urls", "webhook_")),
    ("Realtime", ("realtime_", "parakeet_models")),
    ("Logging and metrics", ("log_", "metrics_")),
]


def group_of(name: str) -> str:
    for group, patterns in GROUPS:
        for pattern in patterns:
            if name == pattern or (pattern.endswith("_") and name.startswith(pattern)):
                return group
    return "Other"


def is_secret(name: str, settings: Settings) -> bool:
    if SECRET_NAME.search(name):
        return True
    annotation = type(settings).model_fields[name].annotation
    return any(t in str(annotation) for t in ("SecretStr", "SecretBytes"))


def mask_url(value: str) -> str:
    """`value` with a URL's password (or token-as-user) and secret-named query parameters
    masked; anything that is not a URL unchanged."""
    match = URL.match(value)
    if not match:
        return value
    scheme, rest = match.groups()
    # The last "@" ends the user info: a password may hold "@" or even an unescaped "/".
    at = rest.rfind("@")
    userinfo = rest[:at] if at >= 0 else ""
    if ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:{MASK}{rest[at:]}"
    elif userinfo and "/" not in userinfo and scheme.lower() in ("http://", "https://"):
        rest = f"{MASK}{rest[at:]}"  # a token as the user name (https://TOKEN@host); elsewhere a user name
    return scheme + SECRET_QUERY.sub(lambda m: m.group(1) + MASK, rest)


def _has_value(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, (dict, list)) and not value)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


class SettingView(BaseModel):
    name: str
    env: str = Field(description="the environment variable that sets it")
    value: Any = Field(description="the effective value (URL passwords masked); null for a secret")
    secret: bool = Field(description="a secret: its value is never shown")
    is_set: bool = Field(
        description="whether it has a value (not null, empty or an empty collection); for secrets the only thing shown"
    )
    source: str = Field(description="'set' (environment, .env or the process that built the settings) or 'default'")


class SettingsGroup(BaseModel):
    name: str
    settings: list[SettingView]


class SettingsView(BaseModel):
    env_prefix: str
    groups: list[SettingsGroup]


def describe(settings: Settings) -> SettingsView:
    """Every field of `settings`, grouped, in declaration order; secrets masked."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    dumped = settings.model_dump(mode="json")
    groups: dict[str, list[SettingView]] = {name: [] for name, _ in GROUPS}
    groups["Other"] = []
    for name in type(settings).model_fields:
        raw = getattr(settings, name)
        secret = is_secret(name, settings)
        if isinstance(raw, (SecretStr, SecretBytes)):
            raw = raw.get_secret_value()
        groups[group_of(name)].append(
            SettingView(
                name=name,
                env=f"{prefix}{name}".upper(),
                value=None if secret else _masked(dumped[name]),
                secret=secret,
                is_set=_has_value(raw),
                source="set" if name in settings.model_fields_set else "default",
            )
        )
    return SettingsView(env_prefix=prefix, groups=[SettingsGroup(name=n, settings=s) for n, s in groups.items() if s])


@router.get("/settings", response_model=SettingsView)
async def settings(principal: Admin, services: ServicesDep) -> SettingsView:
    """The gateway's effective configuration, grouped; secrets show only whether they are set."""
    return describe(services.settings)
