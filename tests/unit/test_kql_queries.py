"""The stored queries: header parsing and the rules every query must keep."""

import re
from datetime import timedelta

import pytest

from bot_core.config import FIELDS
from bot_core.errors import ConfigError
from bot_core.telemetry import EVENTS
from kql.queries import load_queries, parse_query, parse_timespan, select

QUERIES = load_queries()
TRACE_QUERIES = [q for q in QUERIES.values() if q.body.startswith("traces")]


def test_the_release_note_five_the_two_alert_queries_and_messages_by_type_are_stored():
    assert set(QUERIES) == {"concurrency_retries", "race_conditions", "ai_timeouts", "duplicate_messages",
                            "breaker_transitions", "error_rate", "p95_latency", "messages_by_type"}


def reads_message_text(body: str) -> bool:
    """The `message` column (the text) is used; event names (message.processed) and dimensions
    (message_type) that merely start with the word are fine."""
    return re.search(r"(?<![\w.\"])message(?![\w.])", body) is not None


def test_the_message_text_rule_catches_a_planted_use():
    assert reads_message_text("traces | where message has 'Timeout'")
    assert reads_message_text("traces | project timestamp, message")
    assert not reads_message_text('traces | where tostring(customDimensions.event_name) == "message.processed" '
                                  "| summarize messages = sum(itemCount) by message_type")


@pytest.mark.parametrize("query", TRACE_QUERIES, ids=lambda q: q.name)
def test_trace_queries_filter_on_a_catalogued_event_name_never_on_message_text(query):
    names = re.findall(r'tostring\(customDimensions\.event_name\) == "([a-z_.]+)"', query.body)
    assert len(names) == 1 and names[0] in EVENTS
    assert not reads_message_text(query.body)
    assert "contains" not in query.body and "has " not in query.body


@pytest.mark.parametrize("query", QUERIES.values(), ids=lambda q: q.name)
def test_queries_read_the_range_and_count_sampled_items(query):
    assert "where timestamp >= _from and timestamp < _to" in query.body
    assert "count()" not in query.body, "App Insights sampling: count rows with sum(itemCount)"
    assert "extract(" not in query.body
    if "summarize" in query.body and query.name != "p95_latency":
        assert "sum(itemCount)" in query.body


def test_duplicates_group_on_a_numeric_retry_count_ordered_numerically():
    body = QUERIES["duplicate_messages"].body
    assert "retry_count = toint(customDimensions.retry_count)" in body
    assert body.rstrip().endswith("| order by retry_count asc")


def test_race_conditions_count_distinct_phone_hashes_not_a_missing_column():
    body = QUERIES["race_conditions"].body
    assert "dcountif(telefono_hash, isnotempty(telefono_hash))" in body
    assert not re.search(r"\btelefono\b", body)


def test_breaker_transitions_are_capped_with_take():
    assert re.search(r"\| order by timestamp desc\s*\| take \d+\s*$", QUERIES["breaker_transitions"].body)


def test_every_threshold_names_an_existing_alerts_setting_and_a_window():
    with_thresholds = {q.name: q for q in QUERIES.values() if q.threshold}
    assert set(with_thresholds) == {"error_rate", "p95_latency", "concurrency_retries"}
    for query in with_thresholds.values():
        assert query.threshold.config_key in FIELDS and query.threshold.config_key.startswith("alerts.")
        assert re.search(rf"\b{query.threshold.column}\b", query.body)
        assert query.window is not None
    assert with_thresholds["concurrency_retries"].window == timedelta(hours=1)  # "per hour"


def test_header_fields_are_parsed():
    query = parse_query("q", "// title: T\n// description: D\n// render: timechart\n// bin: 5m\n"
                             "// threshold: n > alerts.p95_latency_ms\n// window: 15m\n// severity: 1\n"
                             "traces\n| summarize n = sum(itemCount) by timestamp = bin_from(timestamp)\n")
    assert (query.title, query.description, query.render, query.bin, query.window, query.severity) == \
           ("T", "D", "timechart", timedelta(minutes=5), timedelta(minutes=15), 1)
    assert (query.threshold.column, query.threshold.config_key) == ("n", "alerts.p95_latency_ms")
    assert query.body.startswith("traces\n")


@pytest.mark.parametrize("text, complaint", [
    ("// title: T\n// description: D\ntraces", "lacks render"),
    ("// title: T\n// description: D\n// render: piechart\ntraces", "render must be"),
    ("// title: T\n// description: D\n// render: table\n// colour: red\ntraces", "unknown header key"),
    ("// title: T\n// description: D\n// render: table\n", "no query"),
    ("// title: T\n// description: D\n// render: table\n// bin: 5m\ntraces | take 1", "bin"),
    ("// title: T\n// description: D\n// render: timechart\ntraces | summarize by bin_from(timestamp)", "bin"),
    ("// title: T\n// description: D\n// render: table\n// threshold: n >= alerts.x\n// window: 1h\ntraces",
     "threshold must read"),
    ("// title: T\n// description: D\n// render: table\n// threshold: n > alerts.x\ntraces", "go together"),
])
def test_bad_headers_are_refused_with_the_file_named(text, complaint):
    with pytest.raises(ConfigError, match=complaint) as info:
        parse_query("broken", text)
    assert "broken.kql" in str(info.value)


@pytest.mark.parametrize("text, expected", [("250ms", timedelta(milliseconds=250)), ("90s", timedelta(seconds=90)),
                                            ("30m", timedelta(minutes=30)), ("24h", timedelta(days=1)),
                                            ("7d", timedelta(days=7))])
def test_timespans(text, expected):
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["", "0h", "5", "-5m", "1.5h", "5 m", "5w", "1h; drop"])
def test_bad_timespans_are_usage_errors(text):
    with pytest.raises(ConfigError, match="positive whole number"):
        parse_timespan(text, "--since")


def test_select_keeps_the_order_given_and_names_unknown_queries():
    assert [q.name for q in select(QUERIES, ["p95_latency", "error_rate", "p95_latency"])] == \
           ["p95_latency", "error_rate"]
    assert len(select(QUERIES, None)) == len(QUERIES)
    with pytest.raises(ConfigError, match="unknown query 'nope'.*known: ai_timeouts"):
        select(QUERIES, ["nope"])
