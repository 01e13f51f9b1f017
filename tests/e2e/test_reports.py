"""The HTML reports, rendered from a real run and looked at in headless Chromium.

One real ``botctl serve`` under ``botctl loadtest --verify --html``; its telemetry file (plus
an earlier history written through the bot's own emitters, so every stored query has rows and
two thresholds are breached) under ``botctl metrics --html``; the run's evidence under
``botctl checklist --output html``. Each page is opened in Chromium over the DevTools
protocol and judged from what the browser laid out (tests/support/browser.py): every chart
drew data marks, no console error, no network request. PNG screenshots go to reports/.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from kql.queries import load_queries
from kql.synthetic import Scenario, write_scenario
from migrations.runner import MigrationRunner
from tests.conftest import ROOT, botctl
from tests.e2e.servers import APP_SECRET, BotServer
from tests.support import browser

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.SKIP_REASON)]

REPORTS = ROOT / "reports"
THRESHOLDS = ("p(95)<2000", "errors==0", "rate>=20")
# Earlier history: 45 locking retries 30 s apart (> 20 in some hour: breached), a stretch of
# failing requests (> 2 % in some 15 minutes: breached), and one row for every other query.
HISTORY = Scenario(
    retries=45,
    conflicts=[("+5215550000001", 3), ("+5215550000002", 2)],
    timeouts={"extractStructuredData": 4, "detectIntent": 2},
    duplicates={1: 5, 2: 2, 3: 1},
    transitions=[("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")],
    requests=[(500 if 100 <= n < 108 else 200, 60.0 + (n * 37) % 140) for n in range(240)],
)
HISTORY_SPACING = timedelta(seconds=30)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("reports")
    url = f"sqlite:///{work / 'bot.db'}"
    db = open_database(url)
    MigrationRunner(db).up()
    seed_demo_equipment(db)
    started = datetime.now(timezone.utc)
    with BotServer(url, work) as server:
        loadtest = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "30", "--duration", "4",
                          "--dup-ratio", "0.2", "--burst", "20", *[a for t in THRESHOLDS for a in ("--threshold", t)],
                          "--verify", "--db", url, "--telemetry", str(server.telemetry),
                          "--summary", str(work / "loadtest.json"), "--html", str(work / "loadtest.html"), "-q",
                          env={"BOTCTL_APP_SECRET": APP_SECRET}, cwd=work)
    assert loadtest.returncode in (0, 1), loadtest.stderr
    history_start = started - timedelta(hours=3)
    write_scenario(server.telemetry, HISTORY, history_start, HISTORY_SPACING)
    span = ["--file", str(server.telemetry), "--from", _iso(history_start),
            "--to", _iso(datetime.now(timezone.utc) + timedelta(minutes=1))]
    metrics = botctl("metrics", *span, "--html", str(work / "metrics.html"), "-q", cwd=work)
    assert metrics.returncode == 0, metrics.stderr  # breaches are drawn; only --check makes them exit 1
    checked = botctl("metrics", *span, "--check", "--output", "json", "-q", cwd=work)
    assert checked.returncode == 1, checked.stderr
    (work / "checked.json").write_text(checked.stdout)
    alerts = botctl("alerts", "export", "-q", cwd=work)
    (work / "alerts.json").write_text(alerts.stdout)
    (work / "checklist.yaml").write_text(CHECKLIST)
    checklist = botctl("checklist", "--file", str(work / "checklist.yaml"), "--output", "html", "-q", cwd=work)
    assert checklist.returncode in (0, 1), checklist.stderr
    (work / "checklist.html").write_text(checklist.stdout)
    return work, json.loads((work / "loadtest.json").read_text())


CHECKLIST = """version: 1
items:
  - id: load-test
    title: Load test at the test's own bar
    severity: blocker
    kind: automated
    check: loadtest
    evidence: {path: loadtest.json, min_rate: 20, min_duration_s: 4, max_p95_ms: 2000}
  - id: concurrency
    title: A burst of 20, no duplicates
    severity: blocker
    kind: automated
    check: burst
    evidence: {path: loadtest.json, min_burst: 20}
  - id: alerts-exported
    title: Alert rules exported
    severity: blocker
    kind: automated
    check: alerts
    evidence: {path: alerts.json}
  - id: tech-lead-approval
    title: Tech lead approved the release
    severity: blocker
    kind: attestation
    evidence: {by: lead, at: 2026-01-01, ref: "https://example.invalid/approvals/42", expires: 2099-01-01}
  - id: docs-updated
    title: Documentation updated
    severity: warn
    kind: attestation
    skip: not part of this test
"""


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _look(page: Path, name: str) -> browser.Rendered:
    rendered = browser.render(page, REPORTS / f"{name}.png")
    assert rendered.console_errors == []
    assert rendered.requests == []
    png = rendered.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    return rendered


def _drew(chart: dict) -> bool:
    return chart["width"] > 100 and chart["height"] > 100 and chart["marks"] > 0 and not chart["empty"]


def test_the_loadtest_report_shows_the_run(run):
    work, summary = run
    page = _look(work / "loadtest.html", "loadtest-report")
    charts = {c["label"]: c for c in page.probe["charts"]}
    assert list(charts) == ["Requests per second, sent and acknowledged",
                            "Latency percentiles per second (ms, from the due time)", "Latency by percentile (HDR)",
                            "Responses by status", "Status classes per second"]
    assert all(_drew(c) for c in charts.values()), charts
    assert charts["Requests per second, sent and acknowledged"]["series"] == 2  # sent, acknowledged
    assert charts["Latency percentiles per second (ms, from the due time)"]["series"] == 3  # p50, p95, p99
    assert charts["Latency percentiles per second (ms, from the due time)"]["rules"] == 1  # p(95)<2000
    text = page.probe["text"]
    for t in summary["thresholds"]:
        line = next(line for line in text.splitlines() if t["expression"] in line)
        assert ("✓" if t["passed"] else "✗") in line and f"{t['actual']:.6g}" in line, line
    assert summary["verify"]["ok"] and "nothing lost, nothing done twice" in text
    assert f"inbox_rows\t{summary['verify']['inbox_rows']}" in text
    assert f"rate_target\t{summary['rate_target']:g}" in text and summary["run_id"] in text
    assert sum(summary["timeline"]["sent"]) == summary["requests"]


def test_the_metrics_report_draws_every_query_and_marks_the_breaches(run):
    work, _ = run
    page = _look(work / "metrics.html", "metrics-report")
    queries = load_queries()
    charted = [q for q in queries.values() if q.render != "table"]
    charts = page.probe["charts"]
    assert len(charts) == len(charted)
    assert all(_drew(c) for c in charts), charts
    by_title = {c["label"].split(" per ")[0]: c for c in charts}
    for q in charted:
        chart = by_title[q.title]
        assert chart["rules"] == (1 if q.threshold else 0), q.name
    # Each ringed bin is a bin `metrics --check` finds over its limit, for the same range.
    checked = {q["name"]: q["threshold"] for q in json.loads((work / "checked.json").read_text())["queries"]}
    for name, threshold in checked.items():
        assert by_title[queries[name].title]["breaches"] == threshold["breaches"], name
    assert checked["concurrency_retries"]["breaches"] >= 1 and checked["error_rate"]["breaches"] >= 1
    text = page.probe["text"]
    breached = ", ".join(n for n, t in checked.items() if t["breached"])
    assert f"BREACHED: {breached}" in text
    for from_state, to_state in HISTORY.transitions:  # the table query, as a table
        assert f"{from_state}\t{to_state}" in text


def test_the_checklist_board_links_each_item_to_its_evidence(run):
    work, _ = run
    page = _look(work / "checklist.html", "checklist-report")
    links = page.probe["links"]
    assert (work / "loadtest.json").resolve().as_uri() in links
    assert (work / "alerts.json").resolve().as_uri() in links
    assert "https://example.invalid/approvals/42" in links
    text = page.probe["text"]
    for item in ("load-test", "concurrency", "alerts-exported", "tech-lead-approval", "docs-updated"):
        assert item in text
    assert "✓ pass" in text and "– skip" in text


def test_the_browser_check_catches_a_request_a_console_error_and_an_empty_chart(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title></head><body>'
                   '<svg class="chart" width="300" height="200"><path class="series" d=""/></svg>'
                   '<img src="http://127.0.0.1:9/pixel.png">'
                   '<script>console.error("planted error")</script></body></html>')
    page = browser.render(bad, tmp_path / "bad.png")
    assert any("127.0.0.1:9/pixel.png" in r for r in page.requests)
    assert any("planted error" in e for e in page.console_errors)
    assert [c["marks"] for c in page.probe["charts"]] == [0]
