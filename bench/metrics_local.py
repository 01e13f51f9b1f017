"""Each stored query over 1,000,000 local trace rows, against a plain DuckDB SQL baseline.

    python bench/metrics_local.py [--rows 1000000] [--repeat 7] [--file PATH]

The rows are emitted through bot_core.telemetry into a JSON-lines file (as
``botctl serve`` writes them; reused when --file already exists), loaded with
kql.local, then every stored query runs through duckdb-kql over the whole
range. The baseline, measured in the same run on the same tables, is a plain
DuckDB SQL count of one event name (the work every trace query must at least
do). Printed: median seconds per query (after a warm-up run) and the ratio to the
baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kql import local  # noqa: E402
from kql.queries import load_queries  # noqa: E402
from kql.render import TimeRange, auto_bin, query_text  # noqa: E402
from kql.synthetic import Scenario, write_scenario  # noqa: E402

START = datetime(2024, 5, 1, tzinfo=timezone.utc)
BASELINE_SQL = ("SELECT count(*) FROM traces "
                "WHERE json_extract_string(customDimensions, '$.event_name') = 'concurrency.retry'")


def scenario_for(rows: int) -> Scenario:
    """A mix of every event the queries read, plus 40 % unrelated events."""
    share = rows // 100
    conflicts = [(f"+52155500{n:05d}", 10) for n in range(share)]  # 10 % of rows, on share phones
    states = ["CLOSED", "OPEN", "HALF_OPEN"]
    transitions = [(states[i % 3], states[(i + 1) % 3]) for i in range(share)]  # 1 %
    scenario = Scenario(
        retries=30 * share,
        conflicts=conflicts,
        timeouts={"extractStructuredData": 5 * share, "interpretTerm": 3 * share, "detectIntent": 2 * share},
        duplicates={n: share for n in range(1, 10)},
        transitions=transitions,
    )
    written = (scenario.retries + 10 * share + sum(scenario.timeouts.values())
               + sum(scenario.duplicates.values()) + len(transitions))
    scenario.noise = rows - written
    return scenario


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of *repeat* runs after one warm-up run, and the last value."""
    times, value = [], fn()
    for _ in range(repeat):
        began = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--file", type=Path, help="telemetry file to (re)use")
    args = parser.parse_args()

    path = args.file or Path(tempfile.gettempdir()) / f"botctl-bench-{args.rows}.jsonl"
    span = TimeRange(START, START + timedelta(days=7))
    if not path.exists():
        began = time.perf_counter()
        write_scenario(path, scenario_for(args.rows), START, span.duration / args.rows)
        requests = args.rows // 20
        try:  # 5 % of as many request rows, 4 % of them failed, for error_rate and p95_latency
            write_scenario(path, Scenario(requests=[(503 if n % 25 == 0 else 200, 50.0 + n % 400)
                                                    for n in range(requests)]), START, span.duration / requests)
        except KeyError as exc:
            print(f"no request rows: Telemetry.request() failed ({exc})", file=sys.stderr)
        print(f"emitted the rows through bot_core.telemetry in {time.perf_counter() - began:.1f}s -> {path}",
              file=sys.stderr)

    began = time.perf_counter()
    con = local.connect(path)
    load = time.perf_counter() - began
    (traces,) = con.execute("SELECT count(*) FROM traces").fetchone()
    (requests,) = con.execute("SELECT count(*) FROM requests").fetchone()
    print(f"loaded {traces:,} trace and {requests:,} request rows in {load:.2f}s; range {span.label()}")

    baseline, (expected_retries,) = timed(lambda: con.execute(BASELINE_SQL).fetchone(), args.repeat)
    print(f"{'query':<22}{'rows out':>9}{'seconds':>10}{'x baseline':>12}")
    print(f"{'baseline (SQL count)':<22}{1:>9}{baseline:>10.4f}{1.0:>12.1f}")
    for query in load_queries().values():
        width = auto_bin(span.duration, query.bin) if query.bin else None
        text = query_text(query, "classic", span, width)
        seconds, result = timed(lambda: local.run(con, text), args.repeat)
        print(f"{query.name:<22}{len(result.rows):>9}{seconds:>10.4f}{seconds / baseline:>12.1f}")
        if query.name == "concurrency_retries":
            assert sum(r["retries"] for r in result.rows) == expected_retries
    return 0


if __name__ == "__main__":
    sys.exit(main())
