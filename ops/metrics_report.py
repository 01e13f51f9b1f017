"""``botctl metrics --html FILE``: one chart per stored query over the range, thresholds drawn.

A query with a threshold is charted on its alert window (the bin ``--check`` and the alert
rule judge), as its threshold column against the limit, with every breaching bin ringed in
red. Other timecharts show every series; a columnchart is a bar per row; a table query is a
table. Each section also holds the exact KQL that ran and its rows.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Sequence

from kql import charts
from kql.metrics import QueryRun, empty_message, problem_line
from kql.render import TimeRange, iso, kql_timespan
from ops import report_html as h
from ops import report_svg as svg

MAX_ROWS = 200


def render_html(runs: Sequence[QueryRun], time_range: TimeRange, *, source: str, schema: str,
                now: datetime) -> str:
    judged = [r for r in runs if r.threshold is not None]
    breached = [r.query.name for r in judged if r.threshold.breached]
    failed = [r.query.name for r in runs if r.status == "failed"]
    if breached:
        head = h.verdict(False, f"BREACHED: {', '.join(breached)}")
    elif failed:
        head = h.verdict(None, f"not evaluated: {', '.join(failed)}")
    else:
        head = h.verdict(True, f"{len(judged)} threshold(s) within their limits" if judged else "no threshold judged")
    subtitle = (f"{len(runs)} stored queries · {source} ({schema} schema) · {time_range.label()} · "
                f"generated {iso(now)}")
    body = [head, _summary(runs)]
    for run in runs:
        body += _section(run, time_range)
    return h.page("botctl metrics", subtitle, body)


def _summary(runs: Sequence[QueryRun]) -> str:
    rows = []
    for r in runs:
        t = r.threshold
        rows.append({"": "" if t is None else h.mark(not t.breached), "query": r.query.name, "title": r.query.title,
                     "status": r.status, "rows": len(r.result.rows),
                     "threshold": "" if t is None else f"{t.column} > {t.limit:g}",
                     "worst": None if t is None else t.worst})
    return h.table(rows, ["", "query", "title", "status", "rows", "threshold", "worst"], raw=[""])


def _section(run: QueryRun, time_range: TimeRange) -> list[str]:
    q = run.query
    bin_text = f" · bin {kql_timespan(run.bin)}" + (" (the alert window)" if q.threshold and run.bin == q.window
                                                    else "") if run.bin else ""
    out = [f'<h2 id="{escape(q.name)}">{escape(q.title)} <code>{escape(q.name)}</code></h2>',
           f'<p class="sub">{escape(q.description)} · render {escape(q.render)}{escape(bin_text)}</p>']
    problem = problem_line(run)
    if problem:
        out.append(f'<p class="{"bad" if run.status == "failed" else "warn"}">{escape(problem)}</p>')
    if run.threshold is not None:
        t = run.threshold
        worst = "no value" if t.worst is None else f"max {t.worst:g}" + (f" at {iso(t.at)}" if t.at else "")
        out.append(f"<p>{h.mark(not t.breached)} {escape(t.column)} {escape(worst)}, limit {t.limit:g} "
                   f"(<code>{escape(t.config_key)}</code>): "
                   f"{'<b class=bad>BREACHED</b> in ' + str(t.breaches) + ' bin(s)' if t.breached else 'ok'}</p>")
    if run.status != "failed":
        out.append(_visual(run, time_range))
    rows = run.result.rows
    out.append(f"<details><summary>{len(rows)} row(s) and the KQL that ran</summary>"
               + (h.table(rows[:MAX_ROWS], run.result.columns) if rows else f"<p>{escape(empty_message(time_range))}</p>")
               + f"<pre>{escape(run.text)}</pre></details>")
    return out


def _visual(run: QueryRun, time_range: TimeRange) -> str:
    q, result = run.query, run.result
    if q.render == "timechart" and run.bin:
        bins, lines = charts.timechart_series(result, time_range, run.bin)
        xs = [b.timestamp() for b in bins]
        rules, marks = [], []
        if run.threshold is not None:
            t = run.threshold
            lines = {label: v for label, v in lines.items() if label == t.column} or lines
            rules = [svg.Rule(t.limit, f"limit {t.limit:g} ({t.config_key})", t.breached)]
            marks = [(x, y) for x, y in zip(xs, lines.get(t.column, [])) if y > t.limit]
        series = [svg.Series(label, list(zip(xs, values))) for label, values in lines.items()]
        start, end = time_range.start.timestamp(), time_range.end.timestamp()
        return svg.line_chart(series, title=f"{q.title} per {kql_timespan(run.bin)}", time_axis=True,
                              x_format=svg.utc_label(end - start), x_domain=(start, max(xs[-1], start + 1)),
                              x_label="UTC", rules=rules, marks=marks, step=False)
    if q.render == "columnchart":
        axes = charts.column_axes(result)
        if axes is None:
            return svg.bar_chart([], [], title=q.title)
        x, y = axes
        return svg.bar_chart([charts.column_label(r.get(x)) for r in result.rows],
                             [float(r.get(y) or 0) for r in result.rows], title=q.title, x_label=x, y_label=y)
    return _table_visual(result.rows, result.columns)


def _table_visual(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return '<p class="muted">No rows in the range.</p>'
    return h.table(rows[:MAX_ROWS], columns)
