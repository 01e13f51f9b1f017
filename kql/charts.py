"""Terminal charts for ``render timechart`` and ``render columnchart`` (plain text, no colour).

A timechart is one sparkline per numeric column (and per series, when the rows
carry a text column such as ``operation``), over every bin of the range: bins
the query returned no row for are drawn as zero, as Kusto's timechart does.
A columnchart is one horizontal bar per row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from numbers import Real
from typing import Any, Sequence

from kql.render import TimeRange, iso, kql_timespan
from kql.result import QueryResult

SPARKS = "▁▂▃▄▅▆▇█"
BAR = "█"


def numeric_columns(result: QueryResult) -> list[str]:
    return [c for c in result.columns
            if any(_is_number(r.get(c)) for r in result.rows) and c != "timestamp"]


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def timechart_series(result: QueryResult, time_range: TimeRange,
                     bin: timedelta) -> tuple[list[datetime], dict[str, list[float]]]:
    """Every bin start of the range, and per (series, numeric column) label its value in each bin
    (0 where the query returned no row, as Kusto's timechart draws it)."""
    values = numeric_columns(result)
    series_columns = [c for c in result.columns if c != "timestamp" and c not in values]
    bins = _bin_starts(time_range, bin)
    index = {start: i for i, start in enumerate(bins)}
    lines_data: dict[str, list[float]] = {}
    for row in result.rows:
        slot = index.get(row.get("timestamp"))
        if slot is None:
            continue
        series = " ".join(str(row.get(c)) for c in series_columns)
        for column in values:
            label = f"{series} {column}".strip() if series else column
            line = lines_data.setdefault(label, [0.0] * len(bins))
            value = row.get(column)
            line[slot] += float(value) if _is_number(value) else 0.0
    return bins, lines_data


def timechart(result: QueryResult, time_range: TimeRange, bin: timedelta, width: int = 80) -> str:
    """Sparklines: ``label  ▁▂█▁  max M at T`` per (series, numeric column)."""
    bins, lines_data = timechart_series(result, time_range, bin)
    label_width = max((len(label) for label in lines_data), default=0)
    spark_width = max(10, width - label_width - 2)
    header = f"{iso(time_range.start)} … {iso(time_range.end)}, bin {kql_timespan(bin)}"
    lines = [header]
    for label, points in lines_data.items():
        peak = max(points)
        at = bins[points.index(peak)]
        lines.append(f"{label.ljust(label_width)}  {sparkline(points, spark_width)}  "
                     f"max {_fmt(peak)} at {iso(at)}")
    return "\n".join(lines)


def sparkline(points: Sequence[float], width: int) -> str:
    """One character per point, or per group of points (their maximum) when they do not fit."""
    if len(points) > width:
        size = -(-len(points) // width)
        points = [max(points[i:i + size]) for i in range(0, len(points), size)]
    top = max(points, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(points)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(p / top * (len(SPARKS) - 1) + 0.5))] if p > 0
                   else SPARKS[0] for p in points)


def column_axes(result: QueryResult) -> tuple[str, str] | None:
    """(x, y) of a columnchart: x the first non-numeric column (or the first), y the first numeric one."""
    values = numeric_columns(result)
    if not values or not result.rows:
        return None
    others = [c for c in result.columns if c not in values]
    x = others[0] if others else result.columns[0]
    return x, values[0] if values[0] != x else values[-1]


def column_label(value: Any) -> str:
    return "(none)" if value is None else str(value)


def columnchart(result: QueryResult, width: int = 80) -> str:
    """``x  ████ value`` per row: x is the first non-numeric column (or the first column)."""
    axes = column_axes(result)
    if axes is None:
        return ""
    x, y = axes
    labels = [column_label(r.get(x)) for r in result.rows]
    label_width = max(len(x), *(len(label) for label in labels))
    top = max(float(r.get(y) or 0) for r in result.rows)
    bar_width = max(10, width - label_width - 12)
    lines = [f"{x.ljust(label_width)}  {y}"]
    for label, row in zip(labels, result.rows):
        value = float(row.get(y) or 0)
        length = int(round(value / top * bar_width)) if top > 0 else 0
        lines.append(f"{label.ljust(label_width)}  {BAR * length} {_fmt(value)}")
    return "\n".join(lines)


def _bin_starts(time_range: TimeRange, bin: timedelta) -> list[datetime]:
    starts, at = [], time_range.start
    while at < time_range.end:
        starts.append(at)
        at += bin
    return starts


def _fmt(value: float) -> str:
    return f"{value:.6g}"
