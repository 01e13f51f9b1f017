"""Terminal charts: sparklines over every bin of the range, horizontal bars for column charts."""

from datetime import datetime, timedelta, timezone

from kql.charts import SPARKS, columnchart, sparkline, timechart
from kql.render import TimeRange
from kql.result import QueryResult

UTC = timezone.utc
HOUR = TimeRange(datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))


def at(minute):
    return datetime(2024, 5, 1, 10, minute, tzinfo=UTC)


def test_missing_bins_are_drawn_as_zero_and_the_peak_is_named():
    result = QueryResult.from_tuples(["timestamp", "retries"], [(at(10), 2), (at(40), 8)])
    lines = timechart(result, HOUR, timedelta(minutes=10), width=80).splitlines()
    assert lines[0] == "2024-05-01T10:00:00Z … 2024-05-01T11:00:00Z, bin 10m"
    label, spark, rest = lines[1].split("  ", 2)
    assert label == "retries"
    assert spark == SPARKS[0] + SPARKS[2] + SPARKS[0] + SPARKS[0] + SPARKS[7] + SPARKS[0]
    assert rest == "max 8 at 2024-05-01T10:40:00Z"


def test_a_text_column_splits_series():
    result = QueryResult.from_tuples(["timestamp", "operation", "timeouts"],
                                     [(at(0), "detectIntent", 1), (at(0), "extract", 3), (at(30), "extract", 3)])
    lines = timechart(result, HOUR, timedelta(minutes=30)).splitlines()[1:]
    assert [line.split("  ")[0].strip() for line in lines] == ["detectIntent timeouts", "extract timeouts"]
    assert lines[1].split()[2] == SPARKS[7] * 2


def test_long_series_are_folded_by_maximum_so_spikes_survive():
    points = [0.0] * 200
    points[137] = 5.0
    line = sparkline(points, 20)
    assert len(line) == 20 and line.count(SPARKS[7]) == 1 and line.index(SPARKS[7]) == 137 // 10


def test_all_zero_is_flat():
    assert sparkline([0, 0, 0], 10) == SPARKS[0] * 3


def test_columnchart_bars_are_proportional_and_nulls_are_named():
    result = QueryResult.from_tuples(["retry_count", "duplicates"], [(1, 10), (2, 5), (None, 1)])
    lines = columnchart(result, width=42).splitlines()
    assert lines[0].split() == ["retry_count", "duplicates"]
    bars = [line.split()[1] for line in lines[1:]]
    assert [len(b) for b in bars] == [19, 10, 2]
    assert lines[3].startswith("(none)") and lines[1].endswith(" 10")


def test_nothing_numeric_draws_nothing():
    assert columnchart(QueryResult.from_tuples(["a"], [("x",)])) == ""
