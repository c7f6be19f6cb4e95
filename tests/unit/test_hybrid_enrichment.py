"""Hybrid mode: `enhance_on_end` takes the batch API's enrichment options (gateway.hybrid.parse)."""

from __future__ import annotations

import uuid

import pytest

from gateway.auth import Principal
from gateway.hybrid import InvalidHybridOption, parse
from shared.settings import Settings

ALL = Principal(key_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"realtime", "jobs:write"}))


def options(query: dict[str, str], settings: Settings | None = None):
    return parse(query, settings=settings or Settings(), principal=ALL, model="tiny.en", language="en")


def test_enrichment_options_reach_the_enhancement_job() -> None:
    result = options(
        {
            "enhance_on_end": "true",
            "pii_detection": "true",
            "pii_entity_types": "person_name,credit_card",
            "redact_pii_text": "entity_type",
            "redact_pii_audio": "true",
            "pii_redaction_mode": "beep",
        }
    )
    assert result.enhancement is not None
    assert result.enhancement_dict()["parameters"]["enrich"] == {  # type: ignore[index]
        "pii_detection": True,
        "pii_entity_types": ["person_name", "credit_card"],
        "redact_pii_text": "entity_type",
        "redact_pii_audio": True,
        "pii_redaction_mode": "beep",
    }


def test_llm_options_need_a_configured_refiner() -> None:
    with pytest.raises(InvalidHybridOption, match="DALSTON_LLM_BASE_URL"):
        options({"enhance_on_end": "true", "llm_cleanup": "true"})
    configured = options({"enhance_on_end": "true", "summary": "true"}, Settings(llm_base_url="http://127.0.0.1:9/v1"))
    assert configured.enhancement is not None and configured.enhancement.parameters.enrich.summary


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"pii_detection": "true"}, "need enhance_on_end=true"),
        ({"enhance_on_end": "true", "pii_detection": "true", "pii_entity_types": "shoe_size"}, "shoe_size"),
        ({"enhance_on_end": "true", "detect_emotions": "true"}, "emotion"),
    ],
)
def test_bad_enrichment_refuses_the_session(query: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidHybridOption, match=fragment):
        options(query)


def test_switched_off_options_and_realtime_no_verbatim_need_no_enhancement() -> None:
    assert options({"pii_detection": "false", "no_verbatim": "true"}).enhancement is None


def test_retention_is_a_session_option_with_or_without_enhancement() -> None:
    assert options({}).retention_days is None  # the tenant's default applies
    assert options({"retention": "0"}).retention_days == 0
    assert options({"retention": "30", "enhance_on_end": "true"}).retention_days == 30
    for bad in ("forever", "-2"):
        with pytest.raises(InvalidHybridOption, match="retention"):
            options({"retention": bad})
