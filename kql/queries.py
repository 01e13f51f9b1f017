"""The stored queries: ``kql/*.kql``, each a KQL body under a small metadata header.

A stored query file starts with ``// key: value`` comment lines::

    // title: Optimistic-locking retries
    // description: Session writes that lost the Version check and were retried.
    // render: timechart
    // bin: 5m
    // threshold: retries > alerts.concurrency_retries_per_hour
    // window: 1h
    // severity: 2
    traces
    | where timestamp >= _from and timestamp < _to
    ...

The body is plain KQL over the classic App Insights names (``traces``,
``requests``). It may use the names the prelude defines (see
:mod:`kql.render`): ``_from`` and ``_to`` (the range, datetimes), ``_bin``
(a timespan) and ``bin_from(t)`` (``bin_at(t, _bin, _from)``).

``threshold`` is ``COLUMN > CONFIG_KEY``: the query is breached when any row's
COLUMN exceeds the configured value. ``window`` is the bin a threshold is
evaluated on (``botctl metrics --check``) and the alert rule's window
(``botctl alerts export``), so both judge the same number.

Standard library only: ``botctl --help`` imports this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot_core.errors import ConfigError

QUERY_DIR = Path(__file__).resolve().parent
RENDER_KINDS = ("timechart", "columnchart", "table")
HEADER_KEYS = ("title", "description", "render", "bin", "threshold", "window", "severity")
REQUIRED_KEYS = ("title", "description", "render")

_HEADER_LINE = re.compile(r"^//\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_THRESHOLD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*>\s*([a-z_][a-z0-9_.]*)$")
_TIMESPAN = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
          "h": timedelta(hours=1), "d": timedelta(days=1)}


@dataclass(frozen=True)
class Threshold:
    column: str
    config_key: str


@dataclass(frozen=True)
class StoredQuery:
    name: str
    title: str
    description: str
    render: str
    body: str
    bin: timedelta | None = None
    threshold: Threshold | None = None
    window: timedelta | None = None
    severity: int = 2

    @property
    def uses_bin(self) -> bool:
        return re.search(r"\b(_bin|bin_from)\b", self.body) is not None


def parse_timespan(text: str, what: str = "duration") -> timedelta:
    """``90s``, ``5m``, ``24h``, ``7d``, ``250ms`` → timedelta (positive)."""
    match = _TIMESPAN.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"{what} must be a positive whole number with a unit ms, s, m, h or d "
                          f"(e.g. 30m, 24h, 7d), not {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_query(name: str, text: str) -> StoredQuery:
    """Split a stored query file into its header fields and its body."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    body_start = 0
    for body_start, line in enumerate(lines):
        match = _HEADER_LINE.match(line.strip())
        if not match:
            break
        key, value = match.groups()
        if key not in HEADER_KEYS:
            raise ConfigError(f"{name}.kql: unknown header key {key!r} (known: {', '.join(HEADER_KEYS)})")
        header[key] = value
    else:
        body_start = len(lines)
    missing = [k for k in REQUIRED_KEYS if not header.get(k)]
    if missing:
        raise ConfigError(f"{name}.kql: header lacks {', '.join(missing)}")
    if header["render"] not in RENDER_KINDS:
        raise ConfigError(f"{name}.kql: render must be one of {', '.join(RENDER_KINDS)}")
    body = "\n".join(lines[body_start:]).strip()
    if not body:
        raise ConfigError(f"{name}.kql: no query under the header")

    threshold = None
    if "threshold" in header:
        match = _THRESHOLD.match(header["threshold"])
        if not match:
            raise ConfigError(f"{name}.kql: threshold must read 'COLUMN > config.key'")
        threshold = Threshold(*match.groups())
    query = StoredQuery(
        name=name,
        title=header["title"],
        description=header["description"],
        render=header["render"],
        body=body,
        bin=parse_timespan(header["bin"], f"{name}.kql bin") if "bin" in header else None,
        threshold=threshold,
        window=parse_timespan(header["window"], f"{name}.kql window") if "window" in header else None,
        severity=int(header.get("severity", 2)),
    )
    if query.uses_bin != (query.bin is not None):
        raise ConfigError(f"{name}.kql: a header 'bin' is needed exactly when the body uses _bin or bin_from")
    if (query.threshold is None) != (query.window is None):
        raise ConfigError(f"{name}.kql: 'threshold' and 'window' go together")
    if query.window is not None and not query.uses_bin:
        raise ConfigError(f"{name}.kql: a threshold is evaluated per window, so the body must bin")
    return query


def load_queries(directory: Path = QUERY_DIR) -> dict[str, StoredQuery]:
    """Every stored query in *directory*, by name (the file stem), sorted by name."""
    return {path.stem: parse_query(path.stem, path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.kql"))}


def select(queries: dict[str, StoredQuery], names: list[str] | None) -> list[StoredQuery]:
    """The named queries in the order given, or all of them; unknown names are a usage error."""
    if not names:
        return list(queries.values())
    unknown = [n for n in names if n not in queries]
    if unknown:
        raise ConfigError(f"unknown query {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(queries)} (botctl metrics --list)")
    return [queries[n] for n in dict.fromkeys(names)]
