"""The one output renderer: results to stdout as table, JSON or CSV; messages to stderr."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import date, datetime
from typing import Any, Iterable, Sequence, TextIO

from bot_core.sqltime import iso_utc

FORMATS = ("table", "json", "csv")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False, indent=2)


def render(rows: Sequence[dict[str, Any]] | dict[str, Any], fmt: str = "table",
           columns: Sequence[str] | None = None, stream: TextIO | None = None) -> None:
    """Render a list of rows (or one object, for json) on stdout."""
    stream = stream or sys.stdout
    if fmt == "json":
        stream.write(to_json(rows) + "\n")
        return
    if isinstance(rows, dict):
        rows = [rows]
    columns = list(columns or _columns(rows))
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return
    stream.write(format_table(rows, columns) + "\n")


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


class Console:
    """Human messages on stderr; progress only on a TTY and not under --quiet."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.color = self.stream.isatty() and not os.environ.get("NO_COLOR")

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream)

    def warn(self, message: str) -> None:
        print(self._paint(f"warning: {message}", "33"), file=self.stream)

    def error(self, message: str) -> None:
        print(self._paint(f"botctl: error: {message}", "31"), file=self.stream)

    @property
    def shows_progress(self) -> bool:
        return not self.quiet and self.stream.isatty()

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text
