"""Per-second series of a load run and the HDR percentile distribution, for the HTML report.

Only measured deliveries count (after the warmup), as in the summary's totals. A second is
counted from the generator's start (``t0``): *sent* by when an attempt started, *acked*,
latency and status class by when its answer (or its failure) came.
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from typing import Any

#: Percentiles of the distribution plot: 1 - 10^(-k/4), the HDR plot's log-spaced x axis.
DISTRIBUTION_STEPS = 24


class Timeline:
    def __init__(self) -> None:
        self.sent: Counter[int] = Counter()
        self.acked: Counter[int] = Counter()
        # array('d'): 8 bytes a sample, so a long run at thousands of requests/s stays small.
        self.latencies: defaultdict[int, array] = defaultdict(lambda: array("d"))
        self.classes: defaultdict[str, Counter[int]] = defaultdict(Counter)

    def record(self, started_s: float, done_s: float, status_class: str, latency_s: float) -> None:
        start, done = max(0, int(started_s)), max(0, int(done_s))
        self.sent[start] += 1
        if status_class == "2xx":
            self.acked[done] += 1
        self.latencies[done].append(latency_s * 1000)
        self.classes[status_class][done] += 1

    def to_dict(self) -> dict[str, Any]:
        last = max([*self.sent, *self.latencies], default=-1)
        seconds = list(range(last + 1))
        percentiles: dict[str, list[float | None]] = {"p50": [], "p95": [], "p99": []}
        for s in seconds:
            values = sorted(self.latencies.get(s, ()))
            for name, p in (("p50", 50), ("p95", 95), ("p99", 99)):
                percentiles[name].append(round(_rank(values, p), 3) if values else None)
        return {
            "second": seconds,
            "sent": [self.sent.get(s, 0) for s in seconds],
            "acked": [self.acked.get(s, 0) for s in seconds],
            "latency_ms": percentiles,
            "status_classes": {cls: [counts.get(s, 0) for s in seconds] for cls, counts in sorted(self.classes.items())},
        }


def _rank(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted *values*."""
    index = max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))
    return values[int(index)]


def distribution(hist: Any) -> list[list[float]]:
    """``[[percentile, ms], …]`` from an HdrHistogram: log-spaced up to what the count resolves, then 100."""
    total = hist.get_total_count()
    if not total:
        return []
    out = []
    for k in range(DISTRIBUTION_STEPS + 1):
        p = 100 * (1 - 10 ** (-k / 4))
        if k and 1 / (1 - p / 100) > total:
            break
        out.append([round(p, 4), round(hist.get_value_at_percentile(p) / 1000, 3)])
    out.append([100.0, round(hist.get_max_value() / 1000, 3)])
    return out
