"""Query text: only typed values are substituted, the body is never edited, both schemas from one text."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot_core.errors import ConfigError
from kql.queries import load_queries
from kql.render import (TimeRange, alert_query_text, auto_bin, kql_datetime, kql_timespan, parse_datetime,
                        query_text, resolve_range)
from kql.schemas import columns, workspace_mappings

QUERIES = load_queries()
UTC = timezone.utc
DAY = TimeRange(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
DATETIME_LITERAL = re.compile(r"^datetime\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\)$")
TIMESPAN_LITERAL = re.compile(r"^\d+(d|h|m|s|ms|microseconds)$")


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.timezones()))
def test_any_aware_datetime_becomes_a_strict_utc_literal(value):
    literal = kql_datetime(value)
    assert DATETIME_LITERAL.match(literal)
    assert datetime.strptime(literal, "datetime(%Y-%m-%dT%H:%M:%S.%fZ)").replace(tzinfo=UTC) == value.astimezone(UTC)


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3650)))
def test_any_positive_timedelta_becomes_an_exact_timespan_literal(value):
    literal = kql_timespan(value)
    assert TIMESPAN_LITERAL.match(literal)
    number, unit = re.match(r"(\d+)(\D+)", literal).groups()
    size = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1), "s": timedelta(seconds=1),
            "ms": timedelta(milliseconds=1), "microseconds": timedelta(microseconds=1)}[unit]
    assert int(number) * size == value


@pytest.mark.parametrize("bad", ['2024-05-01") | take 1 //', datetime(2024, 5, 1), 1714521600, None])
def test_anything_but_an_aware_datetime_is_refused(bad):
    with pytest.raises(TypeError):
        kql_datetime(bad)


@pytest.mark.parametrize("bad", ["5m", "5m; traces | take 1", 300, timedelta(0), -timedelta(minutes=1), True])
def test_anything_but_a_positive_timedelta_is_refused(bad):
    with pytest.raises(TypeError):
        kql_timespan(bad)


def test_the_stored_body_is_sent_unchanged_after_a_prelude_of_lets():
    query = QUERIES["concurrency_retries"]
    text = query_text(query, "classic", DAY, timedelta(minutes=5))
    prelude, body = text.split(query.body)
    assert body == "\n"
    assert prelude.splitlines() == [
        "let _from = datetime(2024-05-01T00:00:00.000000Z);",
        "let _to = datetime(2024-05-02T00:00:00.000000Z);",
        "let _bin = 5m;",
        "let bin_from = (t: datetime) { _from + _bin * floor((t - _from) / _bin, 1) };",
    ]


def test_a_query_without_bins_gets_no_bin_in_its_prelude():
    text = query_text(QUERIES["duplicate_messages"], "classic", DAY, None)
    assert "_bin" not in text and "bin_from" not in text


def test_workspace_prelude_maps_the_workspace_tables_onto_the_classic_names():
    text = query_text(QUERIES["error_rate"], "workspace", DAY, timedelta(minutes=15))
    assert text.startswith("let traces = AppTraces\n    | project timestamp = TimeGenerated, message = Message")
    assert "let requests = AppRequests\n    | project timestamp = TimeGenerated, id = Id" in text
    assert "success = Success" in text and "duration = DurationMs" in text and "customDimensions = Properties" in text
    assert text.endswith(QUERIES["error_rate"].body + "\n")


def test_every_workspace_mapping_joins_real_columns_of_both_schemas():
    classic, workspace = columns("classic"), columns("workspace")
    for table, (workspace_table, pairs) in workspace_mappings().items():
        classic_names = {c for c, _ in classic[table]}
        workspace_names = {c for c, _ in workspace[workspace_table]}
        for classic_name, workspace_name in pairs:
            assert classic_name in classic_names and workspace_name in workspace_names
        assert {"timestamp", "itemCount", "customDimensions"} <= {c for c, _ in pairs}


def test_alert_text_covers_the_last_window_as_one_bin():
    text = alert_query_text(QUERIES["concurrency_retries"])
    assert "let _from = now() - 1h;\nlet _to = now();\nlet _bin = 1h;" in text
    with pytest.raises(ConfigError):
        alert_query_text(QUERIES["duplicate_messages"])


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_since_ends_now_and_from_to_are_kept_in_utc():
    assert resolve_range(NOW, since="90m") == TimeRange(NOW - timedelta(minutes=90), NOW, relative=True)
    assert resolve_range(NOW) == TimeRange(NOW - timedelta(hours=24), NOW, relative=True)
    assert resolve_range(NOW, start="2024-05-01T08:00:00Z") == \
        TimeRange(datetime(2024, 5, 1, 8, tzinfo=UTC), NOW)


def test_from_to_across_zones():
    span = resolve_range(NOW, start="2024-05-01T08:00:00-05:00", end="2024-05-01T16:00:00+02:00")
    assert span.label() == "[2024-05-01T13:00:00Z, 2024-05-01T14:00:00Z)"
    assert resolve_range(NOW, since="2h", end="2024-05-01T10:00:00Z").label() == \
        "[2024-05-01T08:00:00Z, 2024-05-01T10:00:00Z)"


@pytest.mark.parametrize("kwargs, complaint", [
    ({"start": "yesterday"}, "not an ISO-8601"),
    ({"since": "1h", "start": "2024-05-01T08:00:00Z"}, "not both"),
    ({"start": "2024-05-01T13:00:00Z", "end": "2024-05-01T12:00:00Z"}, "empty range"),
])
def test_bad_ranges_are_usage_errors(kwargs, complaint):
    with pytest.raises(ConfigError, match=complaint):
        resolve_range(NOW, **kwargs)


def test_parse_datetime_accepts_z_and_offsets():
    assert parse_datetime("2024-05-01T08:00:00Z", "--now") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_datetime("2024-05-01T08:00:00+02:00", "--now") == datetime(2024, 5, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize("duration, stored, expected", [
    (timedelta(hours=24), timedelta(minutes=5), timedelta(minutes=5)),
    (timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=1)),
    (timedelta(days=7), timedelta(minutes=5), timedelta(minutes=30)),
    (timedelta(days=30), timedelta(minutes=5), timedelta(hours=3)),
    (timedelta(days=7), timedelta(hours=1), timedelta(hours=6)),
    (timedelta(hours=6), timedelta(minutes=15), timedelta(minutes=5)),
])
def test_the_bin_follows_the_range(duration, stored, expected):
    assert auto_bin(duration, stored) == expected


def test_a_datetime_without_a_zone_is_utc():
    from kql.render import names_zone

    assert resolve_range(NOW, start="2024-05-01T08:00:00").start == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert not names_zone("2024-05-01T08:00:00") and names_zone("2024-05-01T08:00:00Z")
    assert names_zone("2024-05-01T08:00:00-05:00")


def test_a_range_ending_now_has_round_bins_and_an_alert_window_is_one_bin():
    from kql.render import bin_origin

    now = datetime(2024, 5, 1, 10, 7, 31, 584824, tzinfo=UTC)
    span = resolve_range(now, since="24h")
    assert bin_origin(span.start, timedelta(minutes=15)) == datetime(2024, 4, 30, 10, 0, tzinfo=UTC)
    text = query_text(QUERIES["error_rate"], "classic", span, timedelta(minutes=15), round_bins=True)
    assert "let _origin = datetime(2024-04-30T10:00:00.000000Z);" in text
    assert "_origin + _bin * floor((t - _origin) / _bin, 1)" in text
    assert "_origin" not in query_text(QUERIES["error_rate"], "classic", span, timedelta(minutes=15))
