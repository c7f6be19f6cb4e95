"""Lenient form-field parsing for the compatibility APIs.

Real ElevenLabs and OpenAI clients encode the same field many ways: the literal string
`null` for "absent", JSON-encoded (even double-encoded) strings and lists, repeated keys,
`name[]` keys (openai-python), and booleans in any case. Each reader here takes the raw
`Upload.fields` (name -> list of raw strings) and returns one clean Python value, raising
`FieldError` (the caller maps it to its own API's error shape) when a value is unusable.
"""

from __future__ import annotations

import json
from typing import Any

from shared import safejson

Fields = dict[str, list[str]]

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


def _raw(fields: Fields, name: str) -> list[str]:
    return [*fields.get(name, []), *fields.get(f"{name}[]", [])]


def get_str(fields: Fields, name: str) -> str | None:
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is None:
            continue
        if isinstance(value, (list, dict)):
            raise FieldError(name, "expected a single value")
        return str(value).strip() or None
    return None


def get_bool(fields: Fields, name: str, default: bool | None = None) -> bool | None:
    value = get_str(fields, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(name, f"expected a boolean, got {value!r}")


def get_float(fields: Fields, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
    value = get_str(fields, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise FieldError(name, f"expected a number, got {value!r}") from None
    if number != number or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise FieldError(name, f"must be between {minimum} and {maximum}, got {value}")
    return number


def get_int(fields: Fields, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    number = get_float(fields, name, minimum=minimum, maximum=maximum)
    if number is None:
        return None
    if number != int(number):
        raise FieldError(name, f"expected an integer, got {number}")
    return int(number)


def get_list(fields: Fields, name: str) -> list[Any]:
    """Repeated keys, `name[]` keys, JSON lists and comma-free single values, flattened."""
    items: list[Any] = []
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is None:
            continue
        items.extend(value if isinstance(value, list) else [value])
    return items


def get_json(fields: Fields, name: str) -> Any:
    """A JSON object or list field (e.g. webhook_metadata); a bare string is returned as is."""
    for raw in _raw(fields, name):
        value = _unwrap(raw, name)
        if value is not None:
            return value
    return None
