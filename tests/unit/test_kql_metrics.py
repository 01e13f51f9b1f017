"""Choosing source, schema and bins; judging thresholds; the exit code."""

from datetime import datetime, timedelta, timezone

import pytest

from bot_core.errors import ConfigError
from kql.appinsights import Target
from kql.metrics import QueryRun, bin_for, exit_code, resolve_source, run_queries
from kql.queries import load_queries
from kql.render import TimeRange
from kql.result import QueryResult, evaluate

QUERIES = load_queries()
UTC = timezone.utc
DAY = TimeRange(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
APP_ID = "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/components/appi"


@pytest.mark.parametrize("args, expected", [
    ((None, None, None, None), ("local", "classic", None)),
    ((None, APP_ID, None, None), ("appinsights", "classic", Target("resource", APP_ID))),
    ((None, APP_ID, None, "workspace"), ("appinsights", "workspace", Target("resource", APP_ID))),
    ((None, None, "wid", None), ("appinsights", "workspace", Target("workspace", "wid"))),
])
def test_source_and_schema_defaults(args, expected):
    assert resolve_source(*args) == expected


@pytest.mark.parametrize("args", [("local", APP_ID, None, None), (None, APP_ID, "wid", None),
                                  ("elsewhere", None, None, None), (None, None, None, "modern")])
def test_clashing_sources_are_usage_errors(args):
    with pytest.raises(ConfigError):
        resolve_source(*args)


def test_bins():
    retries = QUERIES["concurrency_retries"]
    assert bin_for(retries, DAY, None, check=False) == timedelta(minutes=5)
    assert bin_for(retries, DAY, timedelta(minutes=2), check=False) == timedelta(minutes=2)
    assert bin_for(retries, DAY, None, check=True) == timedelta(hours=1)
    assert bin_for(QUERIES["ai_timeouts"], DAY, None, check=True) == timedelta(minutes=5)
    assert bin_for(QUERIES["duplicate_messages"], DAY, timedelta(minutes=2), check=False) is None


def test_threshold_is_breached_only_above_the_limit_and_null_never_breaches():
    query = QUERIES["error_rate"]
    rows = [(datetime(2024, 5, 1, h, tzinfo=UTC), v) for h, v in ((1, 2.0), (2, None), (3, 2.5), (4, 1.0))]
    outcome = evaluate(query, QueryResult.from_tuples(["timestamp", "error_rate_percent"], rows), 2.0)
    assert (outcome.breached, outcome.breaches, outcome.worst, outcome.at.hour) == (True, 1, 2.5, 3)
    assert not evaluate(query, QueryResult.from_tuples(["timestamp", "error_rate_percent"], rows[:2]), 2.0).breached


def test_exit_codes():
    def run(status, breached=None):
        result = QueryResult(["timestamp", "retries"], [], status=status)
        run = QueryRun(QUERIES["concurrency_retries"], "", None, result)
        if breached is not None:
            run.threshold = evaluate(QUERIES["concurrency_retries"], QueryResult.from_tuples(
                ["timestamp", "retries"], [(None, 30 if breached else 1)]), 20)
        return run
    assert exit_code([run("ok")], check=False) == 0
    assert exit_code([run("partial")], check=False) == 0
    assert exit_code([run("partial", breached=False)], check=True) == 2
    assert exit_code([run("failed"), run("ok", breached=True)], check=True) == 1
    assert exit_code([run("failed"), run("ok", breached=False)], check=True) == 2
    # metrics --html judges thresholds to draw them; only --check turns a breach into exit 1
    assert exit_code([run("ok", breached=True)], check=False) == 0


def test_a_failing_query_does_not_stop_the_others():
    from kql.local import LocalQueryError

    def runner(text):
        if "concurrency.retry" in text:
            raise LocalQueryError("boom")
        return QueryResult(["x"], [{"x": 1}])
    runs = run_queries([QUERIES["concurrency_retries"], QUERIES["ai_timeouts"]], runner, DAY)
    assert [r.status for r in runs] == ["failed", "ok"]
    assert runs[0].result.error == {"code": "QueryFailed", "message": "boom"}
