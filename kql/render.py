"""The exact KQL text that runs: a ``let`` prelude of typed values, then the stored body.

Nothing but typed values ever reaches query text: a ``datetime`` with a time
zone becomes ``datetime(2024-05-01T00:00:00.000000Z)``, a ``timedelta``
becomes ``5m``/``90s``/``250ms``. Anything else (a string above all) raises
TypeError, so no option value can inject KQL. The stored body itself is never
edited: the prelude defines what it uses.

Prelude names:

``_from``, ``_to``
    the range, half-open ``[_from, _to)``;
``_bin``
    the bin width;
``bin_from(t)``
    ``bin_at(t, _bin, _from)``: bins aligned on the range start, so an alert
    window is exactly one bin; for a range ending now, ``bin_at(t, _bin, _origin)``
    with ``_origin`` a round boundary (bins at :00, :15, …). Spelled with ``floor``
    because duckdb-kql has no ``bin_at`` and mistranslates ``bin()`` of a timespan.

For the workspace schema the prelude first maps ``AppTraces``/``AppRequests``
onto the classic names (``let traces = AppTraces | project timestamp =
TimeGenerated, …``), so one body serves both schemas.

Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot_core.errors import ConfigError
from kql.queries import StoredQuery, parse_timespan
from kql.schemas import workspace_mappings

SCHEMAS = ("classic", "workspace")
#: The range the stored `bin` headers are written for; other ranges scale it.
REFERENCE_RANGE = timedelta(hours=24)
NICE_BINS = tuple(parse_timespan(t) for t in (
    "1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "2d", "7d"))


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range ``[start, end)``; *relative* when it ends now (``--since``)."""

    start: datetime
    end: datetime
    relative: bool = False

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise TypeError("TimeRange needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ConfigError(f"empty range: --to {iso(self.end)} is not after --from {iso(self.start)}")
        object.__setattr__(self, "start", self.start.astimezone(timezone.utc))
        object.__setattr__(self, "end", self.end.astimezone(timezone.utc))

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def label(self) -> str:
        return f"[{iso(self.start)}, {iso(self.end)})"


def iso(value: datetime) -> str:
    """ISO-8601 in UTC with a Z, seconds precision unless there is a fraction."""
    from bot_core.sqltime import iso_utc

    return iso_utc(value)


def parse_datetime(text: str, what: str) -> datetime:
    """An ISO-8601 datetime; one without an offset (``Z``, ``+02:00``) is UTC, as az takes it."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an ISO-8601 datetime "
                          "(e.g. 2024-05-01T08:00:00Z)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def names_zone(text: str) -> bool:
    """Whether an ISO-8601 text carries its offset (else :func:`parse_datetime` took it as UTC)."""
    try:
        return datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def resolve_range(now: datetime, since: str | None = None, start: str | None = None,
                  end: str | None = None) -> TimeRange:
    """``--since`` alone (ending now), or ``--from`` [``--to``, default now]; ``--to`` with ``--since``."""
    if since and start:
        raise ConfigError("give --since or --from, not both")
    end_at = parse_datetime(end, "--to") if end else now
    if start:
        return TimeRange(parse_datetime(start, "--from"), end_at)
    return TimeRange(end_at - parse_timespan(since or "24h", "--since"), end_at, relative=end is None)


def whole_second_after(moment: datetime) -> datetime:
    """*moment* rounded up to a whole second: a range ``[from, to)`` ending "now" still holds the
    events of the current second (rounding down dropped what happened just before the command)."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def bin_origin(start: datetime, width: timedelta) -> datetime:
    """The round bin boundary at or before *start* (multiples of *width* since the Unix epoch, UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + (start - epoch) // width * width


def auto_bin(duration: timedelta, default_bin: timedelta) -> timedelta:
    """The stored bin scaled to the range (same number of points as over 24 h), snapped to a round width."""
    wanted = default_bin * (duration / REFERENCE_RANGE)
    if wanted <= NICE_BINS[0]:
        return NICE_BINS[0]
    return min(NICE_BINS, key=lambda b: abs(math.log(b / wanted)))


def kql_datetime(value: datetime) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError(f"only timezone-aware datetimes go into KQL, not {value!r}")
    utc = value.astimezone(timezone.utc).replace(tzinfo=None)
    return f"datetime({utc.isoformat(timespec='microseconds')}Z)"


def kql_timespan(value: timedelta) -> str:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise TypeError(f"only positive timedeltas go into KQL, not {value!r}")
    micros = value // timedelta(microseconds=1)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                       ("s", 1_000_000), ("ms", 1_000)):
        if micros % size == 0:
            return f"{micros // size}{unit}"
    return f"{micros}microseconds"


def schema_prelude(schema: str) -> list[str]:
    """The ``let`` statements that map the workspace tables onto the classic names."""
    if schema not in SCHEMAS:
        raise ConfigError(f"--schema must be one of {', '.join(SCHEMAS)}, not {schema!r}")
    if schema == "classic":
        return []
    return [f"let {classic} = {workspace}\n    | project " + ", ".join(f"{c} = {w}" for c, w in pairs) + ";"
            for classic, (workspace, pairs) in workspace_mappings().items()]


def _prelude(query: StoredQuery, schema: str, start: str, end: str, bin_text: str | None,
             origin: str | None = None) -> str:
    lets = schema_prelude(schema)
    lets.append(f"let _from = {start};")
    lets.append(f"let _to = {end};")
    if query.uses_bin:
        if bin_text is None:
            raise ConfigError(f"{query.name} needs a bin")
        lets.append(f"let _bin = {bin_text};")
        if origin is None:
            lets.append("let bin_from = (t: datetime) { _from + _bin * floor((t - _from) / _bin, 1) };")
        else:
            lets.append(f"let _origin = {origin};")
            lets.append("let bin_from = (t: datetime) { _origin + _bin * floor((t - _origin) / _bin, 1) };")
    return "\n".join(lets)


def _text(query: StoredQuery, schema: str, start: str, end: str, bin: timedelta | None,
          origin: str | None = None) -> str:
    bin_text = kql_timespan(bin) if query.uses_bin and bin is not None else None
    return f"{_prelude(query, schema, start, end, bin_text, origin)}\n{query.body}\n"


def query_text(query: StoredQuery, schema: str, time_range: TimeRange,
               bin: timedelta | None = None, round_bins: bool = False) -> str:
    """The text ``botctl metrics`` sends (or runs locally) for one stored query.

    Bins start at ``_from`` (an alert window is one bin), or with *round_bins* on round
    boundaries (``bin_origin``), as a range ending "now" should show them.
    """
    if not isinstance(time_range, TimeRange):
        raise TypeError("time_range must be a TimeRange")
    origin = kql_datetime(bin_origin(time_range.start, bin)) if round_bins and bin and query.uses_bin else None
    return _text(query, schema, kql_datetime(time_range.start), kql_datetime(time_range.end), bin, origin)


#: The workbook time-range parameter's expansions (Azure Workbooks substitutes
#: ``datetime(…)`` literals for them when the query runs).
WORKBOOK_START, WORKBOOK_END = "{TimeRange:start}", "{TimeRange:end}"


def workbook_query_text(query: StoredQuery, schema: str, bin: timedelta | None = None) -> str:
    """:func:`query_text` with the range left to the workbook's ``TimeRange`` parameter.

    Once the portal expands ``{TimeRange:start}``/``{TimeRange:end}`` into
    ``datetime(…)`` literals, this is character for character what
    ``botctl metrics --from … --to … --bin … --show-query`` prints.
    """
    return _text(query, schema, WORKBOOK_START, WORKBOOK_END, bin)


def alert_query_text(query: StoredQuery, schema: str = "classic") -> str:
    """The text of a scheduled query rule: the last window, as one bin."""
    if query.window is None:
        raise ConfigError(f"{query.name} has no threshold to alert on")
    window = kql_timespan(query.window)
    return _text(query, schema, f"now() - {window}", "now()", query.window)
