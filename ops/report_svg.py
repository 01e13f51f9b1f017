"""Charts as inline SVG, written by Python with the standard library only.

The HTML reports (``loadtest --html``, ``metrics --html``, ``checklist --output html``) are
single files that must open offline, in a CI artifact viewer as in a browser, with no script:
so their charts are SVG elements drawn here (see docs/design-notes.md for the comparison with
plotly, Vega-Lite and vl-convert). Two chart kinds cover the reports: a line chart (time or
number on x, several series, horizontal threshold lines, breach markers, optionally a log
percentile axis for HDR plots) and a bar chart.

Every chart is ``<svg class="chart" data-points="N">`` where N counts the data marks drawn;
each series is a ``<path class="series">`` (its points ``<circle class="point">`` when there
are few) and each bar a ``<rect class="bar">``, so a
reader (or a test in a browser) can tell a chart with data from an empty frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Callable, Sequence

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22", "#aec7e8")
ALERT = "#d62728"
WIDTH, HEIGHT = 760, 280
#: A rule more than this many times the largest value is drawn on the top edge instead.
OFF_SCALE = 3.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 24, 44, 40
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
               172800, 604800)


@dataclass(frozen=True)
class Series:
    label: str
    #: (x, y) pairs in x order; a y of None leaves a gap.
    points: Sequence[tuple[float, float | None]]
    color: str | None = None
    #: Stroke width: a wide pale series stays visible under a thin one that follows it.
    stroke: float = 1.8


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line (a threshold)."""

    value: float
    label: str
    breached: bool = False


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks, at = [], math.floor(lo / step) * step
    while not ticks or ticks[-1] < hi - step * 1e-9:  # the last tick covers hi
        if at >= lo - step * 1e-9:
            ticks.append(round(at, 12))
        at += step
    return ticks


def time_ticks(lo: float, hi: float, count: int = 7) -> list[float]:
    """Tick positions (epoch or relative seconds) on round second/minute/hour/day steps."""
    span = max(hi - lo, 1)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


def utc_label(span_s: float) -> Callable[[float], str]:
    """A tick formatter for epoch seconds: HH:MM within a day, else MM-DD HH:MM."""
    pattern = "%H:%M:%S" if span_s <= 600 else "%H:%M" if span_s <= 86400 else "%m-%d %H:%M"
    return lambda x: datetime.fromtimestamp(x, timezone.utc).strftime(pattern)


def line_chart(series: Sequence[Series], *, title: str, x_format: Callable[[float], str] = _fmt,
               time_axis: bool = False, x_ticks: Sequence[tuple[float, str]] | None = None,
               x_domain: tuple[float, float] | None = None, y_label: str = "", x_label: str = "",
               rules: Sequence[Rule] = (), marks: Sequence[tuple[float, float]] = (),
               step: bool = False, width: int = WIDTH, height: int = HEIGHT) -> str:
    """Series as polylines over shared axes; *rules* as dashed lines; *marks* as red rings."""
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for _, y in s.points if y is not None]
    drawn = len(ys)
    if x_domain is None:
        x_domain = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x0, x1 = x_domain if x_domain[1] > x_domain[0] else (x_domain[0], x_domain[0] + 1)
    data_top = max(ys, default=0.0)
    # A rule far above the data would flatten it: draw that one on the top edge, marked off scale.
    on_scale = [r.value for r in rules if data_top <= 0 or r.value <= OFF_SCALE * data_top]
    top = max([0.0, *ys, *on_scale])
    y_ticks = nice_ticks(0.0, top * 1.08 if top > 0 else 1.0)
    y1 = y_ticks[-1]
    px = _scale(x0, x1, _LEFT, width - _RIGHT)
    py = _scale(0.0, y1, height - _BOTTOM, _TOP)
    parts = [_frame(title, width, height, drawn)]
    parts += _y_axis(y_ticks, py, width, y_label)
    ticks = x_ticks or [(t, x_format(t)) for t in (time_ticks(x0, x1) if time_axis else nice_ticks(x0, x1, 6))]
    parts += _x_axis([(t, lab) for t, lab in ticks if x0 <= t <= x1], px, height, x_label, width)
    for index, s in enumerate(series):
        color = s.color or PALETTE[index % len(PALETTE)]
        pts = [(px(x), py(y)) if y is not None else None for x, y in s.points]
        parts.append(f'<path class="series" data-label="{escape(s.label)}" fill="none" stroke="{color}" '
                     f'stroke-width="{s.stroke}" d="{_path(pts, step)}"><title>{escape(s.label)}</title></path>')
        if sum(p is not None for p in pts) <= 120:
            parts += [f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{color}"/>' for p in pts if p
                      for x, y in [p]]
    parts += _rules(rules, py, y1, width)
    for x, y in marks:
        parts.append(f'<circle class="breach" cx="{px(x):.1f}" cy="{py(y):.1f}" r="6" fill="none" '
                     f'stroke="{ALERT}" stroke-width="2"><title>{escape(x_format(x))}: {_fmt(y)}</title></circle>')
    parts.append(_legend([(s.label, s.color or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]
                         + [(r.label, ALERT) for r in rules], width))
    if not drawn:
        parts.append(_no_data(width, height))
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, y_label: str = "",
              x_label: str = "", colors: Sequence[str] | None = None, rules: Sequence[Rule] = (),
              width: int = WIDTH, height: int = HEIGHT) -> str:
    """One vertical bar per label."""
    top = max([0.0, *values, *(r.value for r in rules)])
    y_ticks = nice_ticks(0.0, top * 1.08 if top > 0 else 1.0)
    py = _scale(0.0, y_ticks[-1], height - _BOTTOM, _TOP)
    slot = min((width - _LEFT - _RIGHT) / max(len(labels), 1), 120.0)
    parts = [_frame(title, width, height, len(values))]
    parts += _y_axis(y_ticks, py, width, y_label)
    base = py(0.0)
    for i, (label, value) in enumerate(zip(labels, values)):
        x = _LEFT + i * slot + slot * 0.15
        y = py(value)
        color = colors[i] if colors else PALETTE[0]
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{max(base - y, 0.0):.1f}" fill="{color}"><title>{escape(label)}: '
                     f'{_fmt(value)}</title></rect>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                     f'font-size="11">{_fmt(value)}</text>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - _BOTTOM + 14}" text-anchor="middle" '
                     f'font-size="11">{escape(label)}</text>')
    parts += _rules(rules, py, y_ticks[-1], width)
    if x_label:
        parts.append(_x_label(x_label, width, height))
    if not values:
        parts.append(_no_data(width, height))
    parts.append("</svg>")
    return "\n".join(parts)


def _scale(d0: float, d1: float, r0: float, r1: float) -> Callable[[float], float]:
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (v - d0) / span * (r1 - r0)


def _frame(title: str, width: int, height: int, drawn: int) -> str:
    return (f'<svg class="chart" data-points="{drawn}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}" font-family="system-ui, sans-serif">\n'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>\n'
            f'<text x="{_LEFT}" y="18" font-size="14" font-weight="600">{escape(title)}</text>')


def _y_axis(ticks: Sequence[float], py: Callable[[float], float], width: int, label: str) -> list[str]:
    out = []
    for t in ticks:
        y = py(t)
        out.append(f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
                   f'{_fmt(t)}</text>')
    if label:
        out.append(f'<text transform="translate(14 {(_TOP + py(0)) / 2:.0f}) rotate(-90)" text-anchor="middle" '
                   f'font-size="11" fill="#555">{escape(label)}</text>')
    return out


def _x_axis(ticks: Sequence[tuple[float, str]], px: Callable[[float], float], height: int, label: str,
            width: int) -> list[str]:
    base = height - _BOTTOM
    out = [f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base}" y2="{base}" stroke="#999"/>']
    for t, text in ticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" fill="#555">'
                   f'{escape(text)}</text>')
    if label:
        out.append(_x_label(label, width, height))
    return out


def _x_label(label: str, width: int, height: int) -> str:
    return (f'<text x="{(width + _LEFT) / 2}" y="{height - 4}" text-anchor="middle" font-size="11" '
            f'fill="#555">{escape(label)}</text>')


def _rules(rules: Sequence[Rule], py: Callable[[float], float], y_top: float, width: int) -> list[str]:
    """Dashed red lines; one above the scale is drawn on the top edge, dotted, and says so."""
    out = []
    for rule in rules:
        off = rule.value > y_top
        y = py(min(rule.value, y_top))
        out.append(f'<line class="rule" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{ALERT}" stroke-width="1.5" stroke-dasharray="{"2 4" if off else "6 4"}"/>')
        out.append(f'<text x="{width - _RIGHT - 4}" y="{y + (12 if off else -4):.1f}" text-anchor="end" '
                   f'fill="{ALERT}" font-size="11">{escape(rule.label)}{" (above the scale)" if off else ""}'
                   f'{" — breached" if rule.breached else ""}</text>')
    return out


def _path(points: Sequence[tuple[float, float] | None], step: bool) -> str:
    out, pen_down, last = [], False, None
    for p in points:
        if p is None:
            pen_down = False
            continue
        x, y = p
        if pen_down and step and last is not None:
            out.append(f"H{x:.1f}")
        out.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down, last = True, p
    return " ".join(out)


def _legend(entries: Sequence[tuple[str, str]], width: int) -> str:
    out, x = [], _LEFT
    for label, color in entries:
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="35" font-size="11">{escape(label)}</text>')
        x += 24 + 7 * len(label)
        if x > width - 80:
            break
    return "".join(out)


def _no_data(width: int, height: int) -> str:
    return (f'<text class="no-data" x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" '
            f'fill="#888">no data in the range</text>')
