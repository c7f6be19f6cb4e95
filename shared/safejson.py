"""JSON parsing for untrusted input: refuse deep nesting before the parser recurses.

`json.loads` recurses once per nesting level, so a few kilobytes of `[[[[...` raise
`RecursionError` (not `JSONDecodeError`), which callers do not expect and which surfaces
as a 500 or a dead WebSocket session. `loads` here measures the depth first with a scan of
the structural characters and raises `JsonTooDeep`, a `JSONDecodeError`, so every caller's
existing "invalid JSON" handling gives a clear message.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any request this server documents, far below the interpreter's recursion limit.
MAX_DEPTH = 32

# Brackets, and whole string literals (which may contain brackets that do not count).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonTooDeep(json.JSONDecodeError):
    pass


def depth_exceeds(text: str, max_depth: int = MAX_DEPTH) -> int | None:
    """The position where nesting first exceeds `max_depth`, or None."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing documents nested deeper than `max_depth` with `JsonTooDeep`."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError, as json.loads raises
    position = depth_exceeds(text, max_depth)
    if position is not None:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels", text, position)
    return json.loads(text)
