"""k6-style thresholds: ``p(95)<2000``, ``p(99)<=100``, ``avg<50``, ``errors==0``, ``rate>=45``."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from bot_core.errors import ConfigError

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}
_RE = re.compile(r"^\s*(?P<metric>p\((?P<pct>\d+(?:\.\d+)?)\)|avg|max|errors|http_5xx|dropped|late|"
                 r"rate|transport_errors)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?)\s*$")
METRICS = "p(N), avg, max (ms), errors, http_5xx, transport_errors, dropped, late, rate (req/s)"


@dataclass(frozen=True)
class Threshold:
    expression: str
    metric: str
    percentile: float | None
    op: str
    value: float

    def evaluate(self, metrics: dict[str, Any], percentile) -> dict[str, Any]:
        actual = percentile(self.percentile) if self.percentile is not None else metrics.get(self.metric)
        passed = actual is not None and _OPS[self.op](actual, self.value)
        return {"expression": self.expression, "passed": bool(passed), "actual": actual}


def parse_threshold(text: str) -> Threshold:
    match = _RE.match(text)
    if not match:
        raise ConfigError(f"invalid threshold {text!r}: expected e.g. 'p(95)<2000' over {METRICS}")
    pct = float(match["pct"]) if match["pct"] else None
    if pct is not None and not 0 < pct <= 100:
        raise ConfigError(f"invalid threshold {text!r}: percentile must be within (0, 100]")
    metric = "p" if pct is not None else match["metric"]
    return Threshold(text.strip(), metric, pct, match["op"], float(match["value"]))
