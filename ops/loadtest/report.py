"""``botctl loadtest --html FILE``: the run's summary as one self-contained HTML page.

Rendered from the JSON summary alone (the same document ``--summary`` writes), so a saved
summary can be turned into a page later with :func:`render_html`.
"""

from __future__ import annotations

import math
from typing import Any

from ops import report_html as h
from ops import report_svg as svg
from ops.loadtest.thresholds import parse_threshold

_HDR_TICKS = [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%"), (5.0, "99.999%"),
              (6.0, "99.9999%")]
_CLASS_COLORS = {"2xx": "#2ca02c", "3xx": "#17becf", "4xx": "#ff7f0e", "5xx": "#d62728", "timeout": "#9467bd",
                 "transport": "#8c564b"}


def passed(summary: dict[str, Any]) -> bool:
    verify = summary.get("verify")
    return all(t["passed"] for t in summary.get("thresholds", [])) and (verify is None or bool(verify["ok"]))


def render_html(summary: dict[str, Any]) -> str:
    ok = passed(summary)
    lat = summary.get("latency_ms") or {}
    subtitle = (f"{summary.get('url')} · run {summary.get('run_id')} · {summary.get('requests')} requests at "
                f"{summary.get('rate_achieved')}/s (target {summary.get('rate_target')}/s)")
    body = [h.verdict(ok, "PASSED: every threshold held" + (" and --verify found nothing" if summary.get("verify")
                                                               else "") if ok else "FAILED"),
            "<h2>Thresholds</h2>", _thresholds(summary),
            "<h2>Requests per second</h2>", _rps_chart(summary),
            "<h2>Latency over time</h2>", _latency_chart(summary),
            "<h2>Latency distribution (HDR)</h2>", _hdr_chart(summary),
            h.table([{"class": cls, **p} for cls, p in [("all", lat), *(summary.get("latency_by_class") or {}).items()]],
                    ["class", "count", "p50", "p95", "p99", "max", "avg"]),
            "<h2>Status classes</h2>", _status_chart(summary),
            "<h2>Database verification (--verify)</h2>", _verify(summary.get("verify")),
            "<h2>Run parameters</h2>", _parameters(summary)]
    if summary.get("burst"):
        body += ["<h2>Burst</h2>", h.pairs(sorted(summary["burst"].items()))]
    return h.page("botctl loadtest", subtitle, body)


def _thresholds(summary: dict[str, Any]) -> str:
    rows = [{"": h.mark(t["passed"]), "threshold": t["expression"], "measured": t["actual"]}
            for t in summary.get("thresholds", [])]
    if not rows:
        return '<p class="muted">No --threshold given.</p>'
    return h.table(rows, ["", "threshold", "measured"], raw=[""])


def _timeline(summary: dict[str, Any]) -> dict[str, Any]:
    return summary.get("timeline") or {"second": [], "sent": [], "acked": [], "latency_ms": {}, "status_classes": {}}


def _rps_chart(summary: dict[str, Any]) -> str:
    tl = _timeline(summary)
    seconds = tl["second"]
    series = [svg.Series("sent", list(zip(seconds, tl["sent"])), "#9ecae1", stroke=5.0),
              svg.Series("acknowledged (2xx)", list(zip(seconds, tl["acked"])), "#2ca02c")]
    rules = [svg.Rule(float(summary["rate_target"]), f"target {summary['rate_target']:g}/s")] \
        if summary.get("rate_target") else []
    return svg.line_chart(series, title="Requests per second, sent and acknowledged", x_label="seconds since start",
                          y_label="requests/s", rules=rules, step=True, x_domain=_domain(seconds))


def _latency_chart(summary: dict[str, Any]) -> str:
    tl = _timeline(summary)
    seconds = tl["second"]
    series = [svg.Series(name, list(zip(seconds, values)))
              for name, values in (tl.get("latency_ms") or {}).items()]
    parsed = [(parse_threshold(t["expression"]), t["passed"]) for t in summary.get("thresholds", [])]
    rules = [svg.Rule(t.value, t.expression, not ok) for t, ok in parsed if t.percentile is not None and "<" in t.op]
    return svg.line_chart(series, title="Latency percentiles per second (ms, from the due time)",
                          x_label="seconds since start", y_label="ms", rules=rules, x_domain=_domain(seconds))


def _hdr_chart(summary: dict[str, Any]) -> str:
    points = [(-math.log10(1 - p / 100), ms) for p, ms in summary.get("latency_distribution") or [] if p < 100]
    top = max((x for x, _ in points), default=1.0)
    ticks = [t for t in _HDR_TICKS if t[0] <= math.ceil(top)]
    return svg.line_chart([svg.Series("latency at percentile", points)], title="Latency by percentile (HDR)",
                          x_ticks=ticks, x_domain=(0.0, max(1.0, math.ceil(top))), x_label="percentile",
                          y_label="ms")


def _status_chart(summary: dict[str, Any]) -> str:
    counts = summary.get("counts_by_status") or {}
    labels = list(counts)
    colors = [_CLASS_COLORS.get(_class(code), "#7f7f7f") for code in labels]
    bars = svg.bar_chart([_status_label(c) for c in labels], [float(counts[c]) for c in labels],
                         title="Responses by status", y_label="responses", colors=colors)
    tl = _timeline(summary)
    series = [svg.Series(cls, list(zip(tl["second"], values)), _CLASS_COLORS.get(cls))
              for cls, values in (tl.get("status_classes") or {}).items()]
    over_time = svg.line_chart(series, title="Status classes per second", x_label="seconds since start",
                               y_label="responses/s", step=True, x_domain=_domain(tl["second"]))
    return bars + "\n" + over_time


def _class(code: str) -> str:
    return {"598": "timeout", "599": "transport"}.get(code, f"{code[:1]}xx")


def _status_label(code: str) -> str:
    return {"598": "timeout", "599": "transport"}.get(code, code)


def _verify(verify: dict[str, Any] | None) -> str:
    if verify is None:
        return '<p class="muted">Not run (give --verify and --db).</p>'
    lines = [h.verdict(bool(verify["ok"]), "nothing lost, nothing done twice" if verify["ok"]
                       else f"{len(verify['violations'])} invariant(s) violated")]
    if verify["violations"]:
        lines.append("<ul>" + "".join(f"<li>{h.cell(v)}</li>" for v in verify["violations"]) + "</ul>")
    lines.append(h.pairs((k, v) for k, v in verify.items() if k not in ("ok", "violations")))
    return "\n".join(lines)


def _parameters(summary: dict[str, Any]) -> str:
    keys = ("url", "run_id", "rate_target", "duration_s", "warmup_s", "dup_ratio", "shortened", "shorten_factor",
            "rate_achieved", "requests", "deliveries", "redeliveries", "errors", "http_5xx", "transport_errors",
            "dropped", "late", "connections_opened", "wall_s")
    return h.pairs((k, summary.get(k)) for k in keys if k in summary)


def _domain(seconds: list[int]) -> tuple[float, float] | None:
    return (0.0, float(max(seconds[-1], 1))) if seconds else None
