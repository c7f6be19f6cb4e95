"""The audit page's action filter offers exactly the actions the gateway writes."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import audit

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_filter_lists_every_audit_action() -> None:
    written = {value for name, value in vars(audit).items() if name.isupper() and isinstance(value, str) and "." in value}
    source = (ROOT / "console" / "src" / "lib" / "audit.ts").read_text()
    block = re.search(r"export const AUDIT_ACTIONS = \[(.*?)\] as const;", source, re.S)
    assert block is not None, "AUDIT_ACTIONS not found in console/src/lib/audit.ts"
    offered = set(re.findall(r'"([a-z_.]+)"', block.group(1)))
    assert offered == written
