"""The HTML report pieces: SVG charts, the page shell, the loadtest page from a bare summary, --html errors."""

from __future__ import annotations

import re

from ops import report_html as h
from ops import report_svg as svg
from ops.loadtest.report import render_html as loadtest_html
from ops.loadtest.timeline import Timeline
from tests.conftest import botctl


def test_ticks_cover_the_largest_value():
    for top in (0.003, 1, 20, 28.8, 2160, 99_999):
        ticks = svg.nice_ticks(0, top)
        assert ticks[0] == 0 and ticks[-1] >= top and len(ticks) <= 7, (top, ticks)
    assert svg.time_ticks(0, 3600) == [0, 600, 1200, 1800, 2400, 3000, 3600]


def test_a_chart_counts_what_it_draws_and_says_when_there_is_nothing():
    chart = svg.line_chart([svg.Series("a", [(0, 1), (1, None), (2, 3)])], title="t")
    assert 'data-points="2"' in chart and chart.count('class="point"') == 2
    assert re.search(r'class="series"[^>]*d="M[\d.]+,[\d.]+ M', chart)  # a gap lifts the pen
    empty = svg.line_chart([], title="nothing")
    assert 'data-points="0"' in empty and "no data in the range" in empty
    bars = svg.bar_chart(["x", "y"], [1.0, 2.0], title="b")
    assert bars.count('class="bar"') == 2


def test_a_rule_far_above_the_data_is_drawn_on_the_top_edge():
    chart = svg.line_chart([svg.Series("p95", [(0, 40.0), (1, 50.0)])], title="t",
                           rules=[svg.Rule(2000.0, "p(95)<2000")])
    assert "p(95)&lt;2000 (above the scale)" in chart
    assert not re.search(r">2,?000<", chart)  # the y axis was not stretched to the rule


def test_hostile_values_are_escaped_everywhere():
    evil = '<script>alert("x")</script>'
    page = h.page(evil, evil, [h.table([{"a": evil}], ["a"]),
                               svg.line_chart([svg.Series(evil, [(0, 1)])], title=evil, rules=[svg.Rule(1, evil)]),
                               svg.bar_chart([evil], [1.0], title=evil)])
    assert "<script" not in page and "&lt;script&gt;" in page
    assert h.CSP in page and "default-src 'none'" in page


def test_the_loadtest_page_renders_from_a_summary_without_time_series():
    summary = {"url": "http://127.0.0.1:1/webhook", "run_id": "R1", "rate_target": 50.0, "rate_achieved": 49.5,
               "requests": 10, "latency_ms": {"count": 10, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0, "avg": 1.5},
               "counts_by_status": {"200": 9, "598": 1},
               "thresholds": [{"expression": "p(95)<1", "passed": False, "actual": 2.0}], "verify": None}
    page = loadtest_html(summary)
    assert "FAILED" in page and "Not run (give --verify and --db)." in page
    assert ">timeout<" in page and 'data-points="0"' in page


def test_the_timeline_counts_by_second_and_class():
    tl = Timeline()
    tl.record(0.2, 0.3, "2xx", 0.1)
    tl.record(0.9, 1.4, "5xx", 0.5)
    tl.record(1.1, 1.2, "2xx", 0.1)
    d = tl.to_dict()
    assert d["second"] == [0, 1] and d["sent"] == [2, 1] and d["acked"] == [1, 1]
    assert d["status_classes"] == {"2xx": [1, 1], "5xx": [0, 1]}
    assert d["latency_ms"]["p50"] == [100.0, 100.0] and d["latency_ms"]["p99"] == [100.0, 500.0]


def test_html_into_a_missing_folder_is_one_line_exit_2_before_any_work(tmp_path):
    target = str(tmp_path / "nope" / "r.html")
    for args in (["metrics", "--file", str(tmp_path / "t.jsonl"), "--html", target],
                 ["loadtest", "--url", "http://127.0.0.1:1/webhook", "--duration", "1", "--html", target]):
        r = botctl(*args, env={"BOTCTL_APP_SECRET": "x"})
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [f"botctl: error: cannot write the HTML report {target}: "
                                                 f"{tmp_path / 'nope'} is not a writable directory"]
