"""The console's settings view (gateway/console/settings.py): no secret value ever leaves it."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from gateway.console.settings import MASK, describe, group_of, mask_url
from shared.settings import Settings


def secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


def test_no_secret_value_appears_in_the_output() -> None:
    secrets = {name: secret(name) for name in ("api_key", "s3_access_key_id", "s3_secret_access_key", "hf_token")}
    db_password, redis_password, query_password = secret("db"), secret("redis"), secret("query")
    settings = Settings(
        **secrets,
        database_url=f"postgresql://dalston:{db_password}@db.internal:5432/dalston",
        redis_url=f"redis://:{redis_password}@redis.internal:6379/0",
        s3_endpoint_url=f"https://s3.internal/?X-Amz-Signature={query_password}",
        models={"private": f"https://hub:{db_password}@models.internal/whisper"},
    )
    text = describe(settings).model_dump_json()
    for value in [*secrets.values(), db_password, redis_password, query_password]:
        assert value not in text

    view = {s.name: s for g in describe(settings).groups for s in g.settings}
    for name in secrets:
        assert view[name].secret and view[name].value is None and view[name].is_set and view[name].source == "set"
    assert view["database_url"].value == f"postgresql://dalston:{MASK}@db.internal:5432/dalston"
    assert view["redis_url"].value == f"redis://:{MASK}@redis.internal:6379/0"
    assert view["models"].value == {"private": f"https://hub:{MASK}@models.internal/whisper"}


def test_secret_typed_fields_are_masked_whatever_their_name() -> None:
    class WithSecret(Settings):
        llm_credential_blob: SecretStr | None = None
        plain: str = "x"

    hidden = secret("llm")
    settings = WithSecret(llm_credential_blob=SecretStr(hidden))
    view = {s.name: s for g in describe(settings).groups for s in g.settings}
    assert view["llm_credential_blob"].secret and view["llm_credential_blob"].value is None
    assert view["llm_credential_blob"].is_set and hidden not in describe(settings).model_dump_json()
    assert view["plain"].value == "x" and not view["plain"].secret
    assert group_of("llm_credential_blob") == "Other"  # unknown settings are shown, never dropped


def test_every_field_is_listed_once_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DALSTON_API_KEY", raising=False)
    monkeypatch.delenv("DALSTON_PORT", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    listed = [s for g in describe(settings).groups for s in g.settings]
    assert sorted(s.name for s in listed) == sorted(Settings.model_fields)
    assert all(s.env == f"DALSTON_{s.name.upper()}" for s in listed)
    unset = {s.name: s for s in listed}
    assert unset["api_key"].is_set is False and unset["port"].source == "default"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p@ss@h/db", f"postgresql://u:{MASK}@h/db"),
        ("postgresql://u:pa/ss@h/db", f"postgresql://u:{MASK}@h/db"),
        ("https://tok@github.com/x", f"https://{MASK}@github.com/x"),
        ("postgresql://h/db?sslmode=require&password=zz", f"postgresql://h/db?sslmode=require&password={MASK}"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
        ("/models/whisper", "/models/whisper"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
