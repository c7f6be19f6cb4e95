"""Output of the client commands: results on stdout (tables for people, `--json` for scripts),
progress and messages on stderr so that `dalston ... > file` captures only the result."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

# Without a terminal, lines are not folded at 80 columns: tables stay one row per line for grep and awk.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 240)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    err.print(message, markup=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "nothing to list") -> None:
    rows = list(rows)
    if not rows:
        note(empty)
        return
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    out.print(grid)


def pairs(rows: Iterable[tuple[str, str]]) -> None:
    """A record as `name  value` lines."""
    grid = Table(box=None, pad_edge=False, show_header=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value)
    out.print(grid)


def when(value: str | None) -> str:
    """An API timestamp as local time, to the second."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, secs = divmod(float(value), 60)
    return f"{int(minutes)}:{secs:04.1f}" if minutes else f"{secs:.1f}s"


def text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)
