"""Hybrid-mode connect-time options: retention and enhancement are validated before a
session starts (gateway.hybrid.parse)."""

from __future__ import annotations

import uuid

import pytest

from gateway.auth import Principal
from gateway.hybrid import InvalidHybridOption, parse
from shared.settings import Settings

SETTINGS = Settings()
ALL = Principal(key_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"realtime", "jobs:write"}))
REALTIME_ONLY = Principal(key_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"realtime"}))


def options(query: dict[str, str], principal: Principal = ALL, **kwargs):
    return parse(query, settings=SETTINGS, principal=principal, model="tiny.en", language=kwargs.pop("language", None), **kwargs)


def test_defaults_retain_and_do_not_enhance() -> None:
    result = options({})
    assert result.retain_audio and result.enhancement is None


def test_opting_out_of_retention() -> None:
    assert not options({"retain_audio": "false"}).retain_audio
    assert not options({}, logging_enabled=False).retain_audio  # ElevenLabs enable_logging=false
    assert not parse(
        {}, settings=Settings(realtime_retain_audio=False), principal=ALL, model="tiny.en", language=None
    ).retain_audio


def test_enhancement_options_become_job_options() -> None:
    result = options({"enhance_on_end": "true", "speaker_detection": "diarize", "num_speakers": "2"}, language="en")
    assert result.enhancement is not None
    assert result.enhancement_dict() == {
        "model": "tiny.en",
        "language": "en",
        "speaker_detection": "diarize",
        "parameters": {"diarize": {"num_speakers": 2}},
    }
    assert options({"enhance_on_end": "1", "diarize": "true"}).enhancement.speaker_detection == "diarize"


@pytest.mark.parametrize(
    ("query", "kwargs", "fragment"),
    [
        ({"enhance_on_end": "maybe"}, {}, "enhance_on_end"),
        ({"retain_audio": "nah"}, {}, "retain_audio"),
        ({"speaker_detection": "diarize"}, {}, "need enhance_on_end=true"),
        ({"enhance_on_end": "true", "retain_audio": "false"}, {}, "cannot be combined with retain_audio=false"),
        ({"enhance_on_end": "true"}, {"logging_enabled": False}, "enable_logging=false"),
        ({"enhance_on_end": "true", "speaker_detection": "everyone"}, {}, "speaker_detection must be one of"),
        (
            {"enhance_on_end": "true", "speaker_detection": "diarize", "num_speakers": "99"},
            {},
            "num_speakers must be an integer from 1 to 32",
        ),
        ({"enhance_on_end": "true", "num_speakers": "two"}, {}, "num_speakers"),
        ({"enhance_on_end": "true", "num_speakers": "2"}, {}, "need speaker_detection=diarize"),
        ({"enhance_on_end": "true", "enhance_model": "no-such-model"}, {}, "no-such-model"),
        ({"enhance_on_end": "true"}, {"language": "fr"}, "English only"),
        ({"enhance_on_end": "true", "diarize": "true", "speaker_detection": "per_channel"}, {}, "contradicts"),
    ],
)
def test_bad_options_are_refused_before_the_session(query: dict[str, str], kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidHybridOption) as exc:
        options(query, **kwargs)
    assert fragment in str(exc.value)


def test_enhancement_needs_the_jobs_write_scope() -> None:
    with pytest.raises(InvalidHybridOption, match="jobs:write"):
        options({"enhance_on_end": "true"}, principal=REALTIME_ONLY)
    assert options({}, principal=REALTIME_ONLY).enhancement is None
