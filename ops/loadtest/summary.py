"""The end-of-run summary a person reads (k6-style), from the JSON summary a machine reads."""

from __future__ import annotations

from typing import Any

from ops.loadtest.thresholds import parse_threshold

MS_METRICS = {"p", "avg", "max"}


def round_ms(ms: float | None) -> float | None:
    """Milliseconds with the precision worth printing: 0.01 ms below 100 ms, 0.1 ms above."""
    if ms is None:
        return None
    return round(ms, 2) if ms < 100 else round(ms, 1)


def format_ms(ms: float | None) -> str:
    """3 significant digits with a unit: 0.87ms, 7.99ms, 42.3ms, 245ms, 1.23s."""
    if ms is None:
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 100:
        return f"{ms:.0f}ms"
    if ms >= 10:
        return f"{ms:.1f}ms"
    return f"{ms:.2f}ms"


def measured(expression: str, actual: Any) -> str:
    """``p(95)=7.99ms``, ``errors=3``, ``rate=49.8/s``: the value a threshold was held against."""
    threshold = parse_threshold(expression)
    label = f"p({threshold.percentile:g})" if threshold.percentile is not None else threshold.metric
    if actual is None:
        return f"{label}=- (nothing measured)"
    if threshold.metric in MS_METRICS:
        return f"{label}={format_ms(actual)}"
    if threshold.metric == "rate":
        return f"{label}={actual:g}/s"
    return f"{label}={actual:g}"


def failures(result: dict[str, Any]) -> list[str]:
    """One line per reason the run failed: a breached threshold, a verify violation, nothing acknowledged."""
    out = [f"{t['expression']} ({measured(t['expression'], t['actual'])})"
           for t in result["thresholds"] if not t["passed"]]
    if result.get("verify") is not None and not result["verify"]["ok"]:
        out += result["verify"]["violations"]
    if result["deliveries"] and not result.get("acknowledged"):
        out.append(f"no delivery was acknowledged ({_error_detail(result)})")
    return out


def _error_detail(result: dict[str, Any]) -> str:
    parts = [f"{result['http_5xx']} HTTP 5xx", f"{result['transport_errors']} connection errors or timeouts"]
    other = {s: n for s, n in result["counts_by_status"].items() if s.startswith("4")}
    parts += [f"{n} HTTP {s}" for s, n in other.items()]
    return ", ".join(parts)


def render(result: dict[str, Any], check: str = "✓", cross: str = "✗") -> str:
    """The k6-style block: each threshold with its measured value, then the run's figures."""
    lines = []
    for t in result["thresholds"]:
        mark = check if t["passed"] else cross
        lines.append(f"  {mark} {t['expression']:<24} {measured(t['expression'], t['actual'])}")
    if result["thresholds"]:
        lines.append("")
    lat = result["latency_ms"]
    rows = [
        ("deliveries", f"{result['deliveries']} sent at {result['rate_achieved']:g}/s "
                       f"(target {result['rate_target']:g}/s), {result.get('acknowledged', 0)} acknowledged"),
        ("requests", f"{result['requests']} ({result['redeliveries']} redeliveries)"),
        ("latency", " ".join(f"{k}={format_ms(lat[k])}" for k in ("avg", "p50", "p95", "p99", "max"))
         if lat["count"] else "-"),
        ("errors", f"{result['errors']} unacknowledged: {_error_detail(result)}; dropped {result['dropped']}, "
                   f"late {result['late']}"),
    ]
    if result.get("burst"):
        burst = result["burst"]
        rows.append(("burst", f"{burst['acked']}/{burst['size']} acknowledged ({burst['mode']})"))
    verify = result.get("verify")
    if verify is not None:
        mark = check if verify["ok"] else cross
        rows.append(("verify", f"{mark} {verify['inbox_rows']} inbox rows, {verify['reports']} reports for "
                               f"{verify['confirmed_conversations']} confirmed conversations, "
                               f"{len(verify['violations'])} violation(s)"))
    width = max(len(name) for name, _ in rows) + 3
    lines += [f"  {name} {'.' * (width - len(name))} {text}" for name, text in rows]
    return "\n".join(lines)
