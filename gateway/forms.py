"""Lenient form-field parsing for the compatibility APIs.

Real ElevenLabs and OpenAI clients encode the same field many ways: the literal string
`null` for "absent", JSON-encoded (even double-encoded) strings and lists, repeated keys,
`name[]` keys (openai-python), and booleans in any case. Each reader here takes the raw
`Upload.fields` (name -> list of raw strings), or a query string's parameters (name -> one
raw string: a WebSocket's connect-time options), and returns one clean Python value,
raising `FieldError` (the caller maps it to its own API's error shape) when a value is
unusable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, overload

from shared import safejson

Fields = dict[str, list[str]]
# What the readers accept: form fields, or query parameters (one value per name).
FieldSource = Mapping[str, list[str]] | Mapping[str, str]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class FieldError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _unwrap(value: str, name: str) -> Any:
    """Peel JSON encoding (twice at most) off a raw value; `null`/empty become None."""
    current: Any = value.strip()
    for _ in range(2):
        if not isinstance(current, str):
            break
        text = current.strip()
        if text == "" or text.lower() in ("null", "none", "undefined"):
            return None
        if text[:1] in '"[{' or text in ("true", "false") or _is_number(text):
            try:
                current = safejson.loads(text)
                continue
            except safejson.JsonTooDeep as exc:
                raise FieldError(name, exc.msg) from None
            except json.JSONDecodeError:
                pass
        return text
    return current


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _raw(fields: FieldSource, name: str) -> list[str]:
    raw: list[str] = []
    for key in (name, f"{name}[]"):
        value = fields.get(key)
        if value is not None:
            raw.extend([value] if isinstance(value, str) else value)
    return raw


def get_str(fields: FieldSource, name: str) -> str | None:
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is None:
            continue
        if isinstance(value, (list, dict)):
            raise FieldError(name, "expected a single value")
        return str(value).strip() or None
    return None


@overload
def get_bool(fields: FieldSource, name: str, default: bool) -> bool: ...
@overload
def get_bool(fields: FieldSource, name: str, default: None = None) -> bool | None: ...
def get_bool(fields: FieldSource, name: str, default: bool | None = None) -> bool | None:
    value = get_str(fields, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(name, f"expected a boolean, got {value!r}")


@overload
def get_float(
    fields: FieldSource, name: str, *, minimum: float | None = None, maximum: float | None = None, default: float
) -> float: ...
@overload
def get_float(
    fields: FieldSource, name: str, *, minimum: float | None = None, maximum: float | None = None, default: None = None
) -> float | None: ...
def get_float(
    fields: FieldSource, name: str, *, minimum: float | None = None, maximum: float | None = None, default: float | None = None
) -> float | None:
    """A number within [minimum, maximum]; `default` when absent (it is not range-checked)."""
    value = get_str(fields, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise FieldError(name, f"expected a number, got {value!r}") from None
    if number != number or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise FieldError(name, f"must be between {minimum} and {maximum}, got {value}")
    return number


@overload
def get_int(fields: FieldSource, name: str, *, minimum: int | None = None, maximum: int | None = None, default: int) -> int: ...
@overload
def get_int(
    fields: FieldSource, name: str, *, minimum: int | None = None, maximum: int | None = None, default: None = None
) -> int | None: ...
def get_int(
    fields: FieldSource, name: str, *, minimum: int | None = None, maximum: int | None = None, default: int | None = None
) -> int | None:
    number = get_float(fields, name, minimum=minimum, maximum=maximum)
    if number is None:
        return default
    if number != int(number):
        raise FieldError(name, f"expected an integer, got {number}")
    return int(number)


def get_list(fields: FieldSource, name: str) -> list[Any]:
    """Repeated keys, `name[]` keys, JSON lists and comma-free single values, flattened."""
    items: list[Any] = []
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is None:
            continue
        items.extend(value if isinstance(value, list) else [value])
    return items


def get_json(fields: FieldSource, name: str) -> Any:
    """A JSON object or list field (e.g. webhook_metadata); a bare string is returned as is."""
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is not None:
            return value
    return None
