"""The local source: telemetry emitted by the bot's own code path, read back by every stored query.

A scenario with k retries, t timeouts, d duplicates and b transitions (plus
conflicts on known phones and requests with known outcomes) is emitted through
``bot_core.telemetry.Telemetry`` into ``JsonlSink``, as ``botctl serve`` does,
together with noise events whose messages carry every marker the release
note's queries searched for. Each query must report exactly the scenario.
"""

import json
import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.app import main
from kql import local
from kql.metrics import exit_code, local_runner, run_queries
from kql.queries import load_queries
from kql.render import TimeRange, query_text
from kql.schemas import workspace_mappings
from kql.synthetic import Scenario, write_scenario

UTC = timezone.utc
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = TimeRange(NOW - timedelta(hours=24), NOW)
QUERIES = load_queries()
LIMITS = {"alerts.error_rate_percent": 2.0, "alerts.p95_latency_ms": 3000.0,
          "alerts.concurrency_retries_per_hour": 20}


SCENARIO = Scenario(
    retries=23,
    conflicts=[("+5215550000001", 3), ("+5215550000002", 1), ("+5215550000003", 2)],
    timeouts={"extractStructuredData": 4, "interpretTerm": 1, "detectIntent": 2},
    duplicates={1: 5, 2: 3, 3: 1, 10: 2},
    transitions=[("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "OPEN"), ("OPEN", "HALF_OPEN"),
                 ("HALF_OPEN", "CLOSED")],
    noise=9,
)
REQUESTS = [(200, 100.0 + n) for n in range(18)] + [(503, 4000.0), (500, 3500.0)]


@pytest.fixture(scope="module")
def telemetry_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("telemetry") / "botctl-telemetry.jsonl"
    write_scenario(path, SCENARIO, START)
    # Outside the range: must not be counted.
    write_scenario(path, Scenario(retries=50, timeouts={"detectIntent": 50}), NOW + timedelta(minutes=1))
    return path


@pytest.fixture(scope="module")
def run(telemetry_file):
    runner = local_runner(telemetry_file, NOW)

    def run_one(name, time_range=DAY, **kwargs):
        (result,) = run_queries([QUERIES[name]], runner, time_range, **kwargs)
        assert result.status == "ok", result.result.error
        return result.result.rows
    return run_one


def test_the_file_was_written_by_the_bot_s_sink(telemetry_file):
    first = json.loads(telemetry_file.read_text(encoding="utf-8").splitlines()[0])
    assert first["itemType"] == "trace" and first["customDimensions"]["event_name"] == "concurrency.retry"
    assert first["customDimensions"]["attempt"] == "1"  # strings, as App Insights stores them
    assert first["timestamp"] == "2024-05-01T10:00:00Z"


def test_retries(run):
    assert sum(r["retries"] for r in run("concurrency_retries")) == SCENARIO.retries


def test_race_conditions_count_conflicts_and_distinct_phones(run):
    (row,) = run("race_conditions")
    assert row["conflicts"] == sum(n for _, n in SCENARIO.conflicts)
    assert row["phones"] == len(SCENARIO.conflicts)


def test_timeouts_by_operation(run):
    totals = Counter()
    for row in run("ai_timeouts"):
        totals[row["operation"]] += row["timeouts"]
    assert totals == Counter(SCENARIO.timeouts)


def test_duplicates_by_retry_count_in_numeric_order(run):
    rows = run("duplicate_messages")
    assert [(r["retry_count"], r["duplicates"]) for r in rows] == sorted(SCENARIO.duplicates.items())


def test_breaker_transitions_newest_first(run):
    rows = run("breaker_transitions")
    assert [(r["from_state"], r["to_state"]) for r in rows] == SCENARIO.transitions[::-1]
    assert [r["failures"] for r in rows] == list(range(len(SCENARIO.transitions)))[::-1]
    assert all(r["breaker"] == "ai" for r in rows)


def test_bins_are_aligned_on_the_range_start(run):
    span = TimeRange(datetime(2024, 5, 1, 9, 37, tzinfo=UTC), NOW)
    rows = run("concurrency_retries", span, bin=timedelta(minutes=10))
    assert [r["timestamp"] for r in rows] == [datetime(2024, 5, 1, 9, 57, tzinfo=UTC)]


def test_an_empty_range_gives_no_rows(run):
    assert run("concurrency_retries", TimeRange(START - timedelta(days=2), START - timedelta(days=1))) == []


def test_the_workspace_prelude_gives_the_same_answers(telemetry_file):
    """Same body, workspace schema: local AppTraces/AppRequests tables built with the workspace names."""
    con = local.connect(telemetry_file)
    for classic, (workspace, pairs) in workspace_mappings().items():
        select = ", ".join(f'"{c}" AS "{w}"' for c, w in pairs)
        con.execute(f'CREATE TABLE "{workspace}" AS SELECT {select} FROM "{classic}"')
    for query in QUERIES.values():
        width = query.bin
        classic_rows = local.run(con, query_text(query, "classic", DAY, width)).rows
        con.execute("ALTER TABLE traces RENAME TO traces_classic")
        con.execute("ALTER TABLE requests RENAME TO requests_classic")
        try:
            workspace_rows = local.run(con, query_text(query, "workspace", DAY, width)).rows
        finally:
            con.execute("ALTER TABLE traces_classic RENAME TO traces")
            con.execute("ALTER TABLE requests_classic RENAME TO requests")
        assert workspace_rows == classic_rows, query.name


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(0, 40), t=st.integers(0, 15), d=st.dictionaries(st.integers(1, 30), st.integers(1, 5), max_size=4),
       b=st.integers(0, 12), noise=st.integers(0, 5))
def test_any_scenario_is_counted_exactly(tmp_path, k, t, d, b, noise):
    path = tmp_path / f"t-{k}-{t}-{b}-{noise}-{len(d)}-{sum(d.values())}.jsonl"
    path.unlink(missing_ok=True)
    states = ["CLOSED", "OPEN", "HALF_OPEN"]
    scenario = Scenario(retries=k, timeouts={"detectIntent": t} if t else {}, duplicates=d,
                        transitions=[(states[i % 3], states[(i + 1) % 3]) for i in range(b)], noise=noise)
    write_scenario(path, scenario, START, spacing=timedelta(seconds=7))
    runs = {r.query.name: r.result.rows for r in
            run_queries(list(QUERIES.values()), local_runner(path, NOW), DAY)}
    assert sum(r["retries"] for r in runs["concurrency_retries"]) == k
    assert sum(r["timeouts"] for r in runs["ai_timeouts"]) == t
    assert {r["retry_count"]: r["duplicates"] for r in runs["duplicate_messages"]} == d
    assert len(runs["breaker_transitions"]) == b
    assert runs["race_conditions"] == [] and runs["error_rate"] == [] and runs["p95_latency"] == []


def test_error_rate_and_p95_latency_from_requests(tmp_path):
    path = tmp_path / "requests.jsonl"
    write_scenario(path, Scenario(requests=REQUESTS), START)
    runs = {r.query.name: r for r in run_queries([QUERIES["error_rate"], QUERIES["p95_latency"]],
                                                 local_runner(path, NOW), DAY, check=True, limits=LIMITS)}
    (rate,) = runs["error_rate"].result.rows
    assert (rate["requests"], rate["failed"], rate["error_rate_percent"]) == (20, 2, 10.0)
    (latency,) = runs["p95_latency"].result.rows
    durations = sorted(d for _, d in REQUESTS)
    assert latency["p95_ms"] == durations[math.ceil(0.95 * len(durations)) - 1]  # nearest rank
    assert runs["error_rate"].threshold.breached and runs["p95_latency"].threshold.breached
    assert exit_code(list(runs.values()), check=True) == 1


# --- the command line ---------------------------------------------------------------------------


def botctl(capsys, *args):
    code = main(["metrics", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_echoes_the_range_and_holds_every_query(capsys, telemetry_file):
    code, out, _ = botctl(capsys, "--file", str(telemetry_file), "--now", "2024-05-01T14:00:00+02:00",
                          "--output", "json")
    assert code == 0
    report = json.loads(out)
    assert (report["from"], report["to"], report["now"], report["source"], report["schema"]) == \
           ("2024-04-30T12:00:00Z", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z", "local", "classic")
    by_name = {q["name"]: q for q in report["queries"]}
    assert set(by_name) == set(QUERIES)
    assert sum(r["retries"] for r in by_name["concurrency_retries"]["rows"]) == SCENARIO.retries
    assert by_name["concurrency_retries"]["bin"] == "5m"
    assert by_name["error_rate"]["message"] == "no rows in [2024-04-30T12:00:00Z, 2024-05-01T12:00:00Z)"


def test_table_output_says_no_rows_and_draws_charts_on_stderr(capsys, telemetry_file):
    code, out, err = botctl(capsys, "concurrency_retries", "duplicate_messages", "error_rate",
                            "--file", str(telemetry_file), "--now", "2024-05-01T12:00:00Z", "--since", "6h")
    assert code == 0
    assert "# concurrency_retries: Optimistic-locking retries, [2024-05-01T06:00:00Z, 2024-05-01T12:00:00Z), bin 1m" in out
    assert "# error_rate: Webhook error rate" in out
    assert "no rows in [2024-05-01T06:00:00Z, 2024-05-01T12:00:00Z)" in out
    assert "retries  " in err and "█" in err and f"max {SCENARIO.retries} at 2024-05-01T10:00:00Z" in err
    assert "10           ██" in err  # the duplicates column chart: retry count 10
    assert "\x1b[" not in out + err


def test_check_exits_1_when_a_threshold_is_breached(capsys, telemetry_file):
    code, _, err = botctl(capsys, "--check", "--file", str(telemetry_file), "--now", "2024-05-01T12:00:00Z")
    assert code == 1  # 23 retries in one hour > 20
    assert "check concurrency_retries: retries max 23 at 2024-05-01T10:00:00Z, limit 20 " \
           "(alerts.concurrency_retries_per_hour): BREACHED" in err
    assert "check error_rate: error_rate_percent no value, limit 2 (alerts.error_rate_percent): ok" in err


def test_check_takes_its_limits_from_config(capsys, telemetry_file, monkeypatch):
    monkeypatch.setenv("BOTCTL_ALERTS_CONCURRENCY_RETRIES_PER_HOUR", "30")
    code, _, err = botctl(capsys, "--check", "concurrency_retries", "--file", str(telemetry_file),
                          "--now", "2024-05-01T12:00:00Z")
    assert code == 0 and "limit 30 (alerts.concurrency_retries_per_hour): ok" in err


def test_csv_is_one_query(capsys, telemetry_file):
    code, out, err = botctl(capsys, "duplicate_messages", "--output", "csv", "--file", str(telemetry_file),
                            "--now", "2024-05-01T12:00:00Z")
    assert code == 0
    assert out.splitlines() == ["retry_count,duplicates", "1,5", "2,3", "3,1", "10,2"]
    assert "[2024-04-30T12:00:00Z, 2024-05-01T12:00:00Z)" in err
    code, out, err = botctl(capsys, "--output", "csv", "--file", str(telemetry_file))
    assert code == 2 and out == "" and "--output csv holds one table" in err


@pytest.mark.parametrize("args, complaint", [
    (["--since", "1h", "--from", "2024-05-01T08:00:00Z"], "not both"),
    (["--check", "--bin", "5m"], "drop --bin"),
    (["--schema", "workspace"], "--schema workspace needs --source appinsights"),
    (["--source", "appinsights"], "needs --app RESOURCE_ID"),
    (["--workspace", "w", "--schema", "classic"], "use --schema workspace"),
    (["nope"], "unknown query 'nope'"),
    (["--file", "/nonexistent/t.jsonl"], "telemetry file /nonexistent/t.jsonl does not exist"),
])
def test_usage_errors_exit_2_with_one_line(capsys, args, complaint):
    code, out, err = botctl(capsys, *args)
    assert code == 2 and out == ""
    assert complaint in err and len(err.strip().splitlines()) == 1


def test_show_query_prints_the_exact_text_and_runs_nothing(capsys):
    code, out, _ = botctl(capsys, "race_conditions", "--show-query", "--workspace", "w",
                          "--from", "2024-05-01T00:00:00Z", "--to", "2024-05-08T00:00:00Z")
    assert code == 0
    span = TimeRange(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC))
    assert out == "// race_conditions\n" + query_text(QUERIES["race_conditions"], "workspace", span,
                                                       timedelta(hours=6)) + "\n"


def test_an_empty_file_and_a_line_cut_short_are_read(capsys, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("", encoding="utf-8")
    code, out, _ = botctl(capsys, "concurrency_retries", "--file", str(path), "--now", "2024-05-01T12:00:00Z")
    assert code == 0 and "no rows in" in out
    write_scenario(path, Scenario(retries=3), START)
    with open(path, "a", encoding="utf-8") as stream:
        stream.write('{"itemType": "trace", "timestamp": "2024-05-01T10:00:')  # botctl serve killed mid-write
    code, out, _ = botctl(capsys, "concurrency_retries", "--file", str(path), "--now", "2024-05-01T12:00:00Z",
                          "-o", "json")
    assert code == 0 and sum(r["retries"] for r in json.loads(out)["queries"][0]["rows"]) == 3


def test_a_range_ending_now_counts_what_happened_this_second(capsys, tmp_path):
    """Without --now the range ends at the next whole second: an event of the current second,
    just before the command, is in [from, to) (rounding now down left it out)."""
    path = tmp_path / "now.jsonl"
    write_scenario(path, Scenario(requests=[(200, 10.0), (403, 1.0)]), datetime.now(UTC),
                   spacing=timedelta(microseconds=1))
    code, out, _ = botctl(capsys, "error_rate", "--file", str(path), "--since", "1h", "--output", "json")
    assert code == 0
    (query,) = json.loads(out)["queries"]
    assert sum(row["requests"] for row in query["rows"]) == 2


def test_whole_second_after_rounds_up_only_a_fraction():
    from kql.render import whole_second_after

    assert whole_second_after(datetime(2024, 5, 1, 10, 7, 31, 1, tzinfo=UTC)) == datetime(2024, 5, 1, 10, 7, 32, tzinfo=UTC)
    assert whole_second_after(datetime(2024, 5, 1, 10, 7, 31, tzinfo=UTC)) == datetime(2024, 5, 1, 10, 7, 31, tzinfo=UTC)
