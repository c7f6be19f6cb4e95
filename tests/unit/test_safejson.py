"""shared.safejson: deep nesting is refused as invalid JSON, not a RecursionError."""

from __future__ import annotations

import json

import pytest

from shared import safejson


def test_ordinary_documents_parse() -> None:
    assert safejson.loads('{"a": [1, {"b": "[[[[{{{"}]}') == {"a": [1, {"b": "[[[[{{{"}]}
    assert safejson.loads(b'["\\"[", 2]') == ['"[', 2]


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 50_000, "[" * 33 + "]" * 33])
def test_deep_nesting_is_a_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 32"):
        safejson.loads(text)


def test_depth_limit_is_exact() -> None:
    assert safejson.loads("[" * 32 + "]" * 32) is not None
    assert safejson.depth_exceeds("[" * 33, 32) == 32
