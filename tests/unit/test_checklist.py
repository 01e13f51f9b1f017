"""botctl checklist: every status from fixture evidence, bad checklists, output formats, exit codes."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from bot_core.errors import ConfigError
from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from ops.checklist import STATUSES, Context, evaluate, find_checklist, load_checklist, report, verdict
from ops.checklist_render import render_junit, render_markdown, write_markdown
from tests.conftest import ROOT, botctl

FIX = ROOT / "tests" / "fixtures" / "checklist"
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def ev(tmp_path) -> Path:
    """A writable copy of the fixture evidence and its all-passing checklist; the rehearsal
    fixture covers every migration there is now."""
    from migrations.scripts import load_migrations

    shutil.copytree(FIX, tmp_path / "ev")
    patch_json(tmp_path / "ev", "rehearsal.json", versions=[m.version_label for m in load_migrations("sqlite")])
    return tmp_path / "ev"


@pytest.fixture
def db_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    MigrationRunner(open_database(url)).up()
    return url


def edit(ev: Path, item_id: str, **changes) -> None:
    """Change one item of ev/checklist.yaml; a None value removes the key; evidence is merged."""
    path = ev / "checklist.yaml"
    data = yaml.safe_load(path.read_text())
    item = next(i for i in data["items"] if i["id"] == item_id)
    for key, value in changes.items():
        if key == "evidence" and isinstance(value, dict) and item.get("evidence"):
            value = {**item["evidence"], **value}
        item[key] = value
        if value is None:
            del item[key]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def patch_json(ev: Path, name: str, **changes) -> None:
    doc = json.loads((ev / name).read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        target = doc
        for p in parents:
            target = target[int(p) if isinstance(target, list) else p]
        target[key] = value
    (ev / name).write_text(json.dumps(doc))


def run(ev: Path, db_url: str, now: datetime = NOW):
    results = evaluate(load_checklist(ev / "checklist.yaml"), Context(now=now, db=db_url))
    return {r.id: r for r in results}, verdict(results)


def test_fixture_evidence_is_ready(ev, db_url):
    results, outcome = run(ev, db_url)
    assert {r.status for r in results.values()} == {"pass"}, [(r.id, r.detail) for r in results.values()]
    assert outcome == ("ready", 0) and len(results) == 12


COVERAGE_LOW = dict(evidence={"path": "cobertura-low.xml"})


@pytest.mark.parametrize("item, setup, status, code, fragment", [
    ("coverage", lambda ev: edit(ev, "coverage", **COVERAGE_LOW), "fail", 1, "61.2% < 80%"),
    ("coverage", lambda ev: edit(ev, "coverage", severity="warn", **COVERAGE_LOW), "warn", 0, "61.2%"),
    ("load-test", lambda ev: edit(ev, "load-test", skip="no traffic path changed in this release"), "skip", 0,
     "no traffic path"),
    ("coverage", lambda ev: edit(ev, "coverage", **COVERAGE_LOW, waiver={
        "reason": "legacy module", "approver": "cto", "expires": "2025-06-30"}), "waived", 0, "waived by cto"),
    ("coverage", lambda ev: edit(ev, "coverage", **COVERAGE_LOW, waiver={
        "reason": "legacy module", "approver": "cto", "expires": "2025-06-01"}), "fail", 1, "ignored"),
    ("tech-lead-approval", lambda ev: edit(ev, "tech-lead-approval", evidence={"expires": "2025-06-09"}),
     "stale", 1, "expired (was valid through 2025-06-09)"),
    ("docs-updated", lambda ev: edit(ev, "docs-updated", evidence={
        "at": "2025-05-01", "expires": "2025-06-01T00:00:00Z"}), "stale", 0, "expired (was valid through 2025-05-31)"),
    ("tech-lead-approval", lambda ev: edit(ev, "tech-lead-approval", evidence=None), "fail", 1, "not attested"),
    ("alerts-exported", lambda ev: edit(ev, "alerts-exported", evidence={"path": "nope.json"}), "error", 2,
     "nope.json not found"),
    ("alerts-exported", lambda ev: (ev / "alerts.json").write_text("{oops"), "error", 2, "not valid JSON"),
    ("alerts-exported", lambda ev: patch_json(ev, "alerts.json", resources=json.loads(
        (ev / "alerts.json").read_text())["resources"][:2]), "fail", 1, "2 scheduled query rule(s), 3 needed"),
    ("unit-tests", lambda ev: edit(ev, "unit-tests", evidence={"path": "junit-failing.xml"}), "fail", 1,
     "test_webhook_payload::test_rejects_bad_signature"),
    ("kql-valid", lambda ev: edit(ev, "kql-valid", evidence={"path": "junit-failing.xml"}), "error", 2,
     "2 of 2 skipped"),
    ("unit-tests", lambda ev: edit(ev, "unit-tests", evidence={"allow_skipped": False}), "error", 2,
     "1 of 5 skipped, so not evaluated (first: psqlODBC"),
    ("integration-tests", lambda ev: edit(ev, "integration-tests", evidence={"classnames": ["tests.perf"]}),
     "error", 2, "no testcases of tests.perf"),
    ("coverage", lambda ev: (ev / "cobertura.xml").write_text("<coverage"), "error", 2, "not valid XML"),
    ("load-test", lambda ev: edit(ev, "load-test", evidence={"path": "loadtest-shortened.json"}), "fail", 1,
     "ran 12 s < 120 s (a shortened run cannot prove"),
    ("load-test", lambda ev: patch_json(ev, "loadtest.json", **{"latency_ms.p95": 2100.0}), "fail", 1,
     "p95 2100 ms >= 2000 ms"),
    ("load-test", lambda ev: patch_json(ev, "loadtest.json", errors=3, rate_target=40.0, rate_achieved=40.0),
     "fail", 1, "target rate 40/s < 50/s; achieved 40/s < 47.5/s; 3 errors > 0"),
    ("load-test", lambda ev: patch_json(ev, "loadtest.json", latency_ms={}), "error", 2, "has no 'p95'"),
    ("concurrency", lambda ev: patch_json(ev, "loadtest.json", **{
        "verify.duplicate_reports": 2, "verify.ok": False, "verify.violations": ["2 reports for 1 message"]}),
     "fail", 1, "2 duplicate reports"),
    ("concurrency", lambda ev: patch_json(ev, "loadtest.json", **{
        "verify.unprocessed": 3, "verify.ok": False, "verify.violations": ["3 inbox rows unprocessed"]}),
     "fail", 1, "verify failed: 3 inbox rows unprocessed"),
    ("concurrency", lambda ev: patch_json(ev, "loadtest.json", **{"burst.size": 20}), "fail", 1, "burst of 20 < 100"),
    ("concurrency", lambda ev: edit(ev, "concurrency", evidence={"path": "loadtest-shortened.json"}), "error", 2,
     "no burst"),
    ("concurrency", lambda ev: patch_json(ev, "loadtest.json", verify=None), "error", 2, "no verify section"),
    ("rollback-rehearsed", lambda ev: patch_json(ev, "rehearsal.json", identical=False, **{
        "steps.4.differences": ["index IX_x missing"]}), "fail", 1, "schemas differ after: down --to 002"),
    ("rollback-rehearsed", lambda ev: edit(ev, "rollback-rehearsed", evidence={"path": "loadtest.json"}),
     "error", 2, "is not 'botctl migrate rehearse"),
    ("production-backup", lambda ev: patch_json(ev, "attestation.json", ref=None), "error", 2, "missing ref"),
])
def test_each_status_from_evidence(ev, db_url, item, setup, status, code, fragment):
    setup(ev)
    results, (_, exit_code) = run(ev, db_url)
    assert (results[item].status, exit_code) == (status, code), results[item].detail
    assert fragment in results[item].detail
    assert all(r.status == "pass" for r in results.values() if r.id != item)


def test_migrations_pending_fails_and_missing_database_is_error(ev, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    MigrationRunner(open_database(url)).up(to=1)
    results, outcome = run(ev, url)
    assert results["migrations-applied"].status == "fail" and outcome == ("blocked", 1)
    assert "not applied: 002 pending, 003 pending" in results["migrations-applied"].detail
    results, outcome = run(ev, f"sqlite:///{tmp_path / 'none.db'}")
    assert results["migrations-applied"].status == "error" and outcome == ("incomplete", 2)
    assert not (tmp_path / "none.db").exists()


def test_real_rehearsal_passes_and_one_older_than_the_migrations_fails(ev, db_url, tmp_path):
    from migrations.rehearse import rehearse

    doc = rehearse(open_database(f"sqlite:///{tmp_path / 'scratch.db'}"))
    (ev / "rehearsal.json").write_text(json.dumps(doc))
    assert run(ev, db_url)[0]["rollback-rehearsed"].status == "pass"
    patch_json(ev, "rehearsal.json", versions=doc["versions"][:-1])
    result = run(ev, db_url)[0]["rollback-rehearsed"]
    assert result.status == "fail" and f"predates migration(s) {doc['versions'][-1]}" in result.detail


def test_a_date_expiry_is_valid_through_that_day(ev, db_url):
    edit(ev, "tech-lead-approval", evidence={"expires": "2025-06-10"})

    def status(*when):
        return run(ev, db_url, datetime(*when, tzinfo=timezone.utc))[0]["tech-lead-approval"].status

    assert (status(2025, 6, 10, 23, 59), status(2025, 6, 11)) == ("pass", "stale")


ITEM = "  - id: a\n    title: A\n    severity: blocker\n    kind: attestation\n"


@pytest.mark.parametrize("text, fragment", [
    ("version: 1\nitems:\n" + ITEM + "    waiver: {reason: r, approver: cto}\n",
     "line 3: item 'a': waiver is missing expires"),
    ("version: 1\nitems:\n" + ITEM + "    waiver: {reason: r, expires: 2030-01-01}\n", "waiver is missing approver"),
    ("version: 1\nitems:\n" + ITEM.replace("severity", "sevrity"), "unknown key(s) sevrity"),
    ("version: 1\nitems:\n" + ITEM.replace("blocker", "critical"), "severity must be one of blocker, warn, info"),
    ("version: 1\nitems:\n" + ITEM.replace("attestation", "manual"), "kind must be one of automated, attestation"),
    ("version: 1\nitems:\n" + ITEM.replace("attestation", "automated") + "    check: pytest\n", "check must be one of"),
    ("version: 1\nitems:\n" + ITEM.replace("attestation", "automated") + "    check: junit\n",
     "evidence 'classnames' is required"),
    ("version: 1\nitems:\n" + ITEM.replace("attestation", "automated") + "    check: coverage\n"
     "    evidence: {path: c.xml, min: 0.8}\n", "unknown evidence key(s) min"),
    ("version: 1\nitems:\n" + ITEM + "    evidence: {by: x, at: '2025-06-01T10:00:00', ref: r, expires: 2030-01-01}\n",
     "has no timezone"),
    ("version: 1\nitems:\n" + ITEM + "    evidence: {by: x, at: 2025-06-02, ref: r, expires: 2025-06-01}\n",
     "attestation expires before it was given"),
    ("version: 1\nitems:\n" + ITEM + ITEM, "line 7: duplicate item id 'a'"),
    ("version: 1\nitems:\n  - id: a\n    title: x: y\n", "line 4: invalid YAML (mapping values are not allowed here)"),
    ("version: 1\nitems:\n" + ITEM + "    title: again\n", "line 3: duplicate key 'title'"),
    ("version: 2\nitems:\n" + ITEM, "unsupported checklist version 2"),
    ("items: []\n", "non-empty 'items' list"),
])
def test_bad_checklist_is_a_config_error(tmp_path, text, fragment):
    (tmp_path / "checklist.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_checklist(tmp_path / "checklist.yaml")
    assert fragment in str(caught.value)


def test_repository_checklist_models_the_release_notes_eleven_items():
    checklist = load_checklist(ROOT / "checklist.yaml")
    assert sorted({i.release_note for i in checklist.items}) == list(range(1, 12))
    assert [i.id for i in checklist.items if i.release_note == 2] == ["unit-tests", "integration-tests"]
    assert len(checklist.items) == 12 and all(i.severity == "blocker" for i in checklist.items[:-1])
    assert [i.id for i in checklist.items if i.kind == "attestation"] == [
        "tech-lead-approval", "production-backup", "docs-updated"]


def test_find_checklist_walks_up_to_the_repository_root(tmp_path):
    (tmp_path / "checklist.yaml").write_text("")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir()
    with pytest.raises(ConfigError, match="no checklist.yaml"):
        find_checklist(tmp_path / "repo" / "sub")
    (tmp_path / "repo" / "checklist.yaml").write_text("")
    assert find_checklist(tmp_path / "repo" / "sub") == tmp_path / "repo" / "checklist.yaml"


# --- output ----------------------------------------------------------------------------


def mixed(ev: Path, db_url: str):
    """A run with fail, warn, skip, waived, stale (non-blocker) and error (non-blocker) items."""
    edit(ev, "unit-tests", evidence={"path": "junit-failing.xml"})
    edit(ev, "coverage", **COVERAGE_LOW, waiver={"reason": "legacy", "approver": "cto", "expires": "2099-01-01"})
    edit(ev, "load-test", skip="not applicable | no traffic change")
    edit(ev, "alerts-exported", severity="info", evidence={"path": "missing.json"})
    edit(ev, "integration-tests", severity="warn", evidence={"path": "junit-failing.xml", "classnames": ["tests.unit"]})
    edit(ev, "docs-updated", evidence={"at": "2024-12-01", "expires": "2025-01-01"})
    checklist = load_checklist(ev / "checklist.yaml")
    return checklist, evaluate(checklist, Context(now=NOW, db=db_url))


ITEM_TYPES = {"id": str, "title": str, "severity": str, "kind": str, "check": (str, type(None)),
              "release_note": (int, type(None)), "status": str, "detail": str, "evidence": (str, type(None)),
              "waiver": (dict, type(None))}


def assert_documented_shape(doc: dict) -> None:
    assert set(doc) == {"checklist", "evaluated_at", "verdict", "headline", "not_evaluated", "exit_code", "counts",
                        "items"}
    assert doc["headline"].startswith(doc["verdict"].upper()) and isinstance(doc["not_evaluated"], list)
    assert datetime.fromisoformat(doc["evaluated_at"]).tzinfo is not None
    assert (doc["verdict"], doc["exit_code"]) in {("ready", 0), ("blocked", 1), ("incomplete", 2)}
    assert list(doc["counts"]) == list(STATUSES) and sum(doc["counts"].values()) == len(doc["items"])
    for item in doc["items"]:
        assert set(item) == set(ITEM_TYPES) and all(isinstance(item[k], t) for k, t in ITEM_TYPES.items())
        assert item["status"] in STATUSES and item["severity"] in ("blocker", "warn", "info")
        assert item["kind"] in ("automated", "attestation")
        if item["waiver"] is not None:
            assert set(item["waiver"]) == {"reason", "approver", "expires", "active"}
            assert isinstance(item["waiver"]["active"], bool)


def test_json_report_has_the_documented_shape(ev, db_url):
    checklist, results = mixed(ev, db_url)
    doc = json.loads(json.dumps(report(checklist, results, NOW)))
    assert_documented_shape(doc)
    assert doc["counts"] == {"pass": 6, "fail": 1, "warn": 1, "skip": 1, "waived": 1, "stale": 1, "error": 1}
    assert (doc["verdict"], doc["exit_code"]) == ("blocked", 1)
    assert next(i for i in doc["items"] if i["id"] == "coverage")["waiver"]["active"] is True


def test_junit_agrees_with_the_exit_code(ev, db_url):
    _, results = mixed(ev, db_url)
    suite = ET.fromstring(render_junit(results)).find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [r.id for r in results]
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["12", "1", "0", "2"]
    assert cases["unit-tests"].find("failure").get("type") == "fail"
    assert cases["coverage"].find("skipped").get("message").startswith("waived:")
    assert cases["load-test"].find("skipped") is not None
    for quiet in ("integration-tests", "alerts-exported", "docs-updated"):  # non-blockers never fail the suite
        assert cases[quiet].find("failure") is None and cases[quiet].find("error") is None
        assert cases[quiet].find("system-out").text.split(":")[0] in ("warn", "error", "stale")


def test_markdown_and_table_have_a_row_per_item(ev, db_url):
    from cli.output import render

    _, results = mixed(ev, db_url)
    lines = render_markdown(results).splitlines()
    assert lines[0] == "## Pre-production checklist: BLOCKED"
    rows = [line for line in lines if line.startswith("| ") and "`" in line]
    assert [row.split("`")[1] for row in rows] == [r.id for r in results]
    assert all(row.count(" | ") == 4 for row in rows)  # five cells: pipes in details are escaped
    out = io.StringIO()
    render([r.to_dict() for r in results], "table", columns=["id", "severity", "status", "detail"], stream=out)
    assert [line.split()[0] for line in out.getvalue().splitlines()[2:]] == [r.id for r in results]


def test_markdown_is_appended_to_the_step_summary(tmp_path):
    summary, md_out = tmp_path / "summary.md", tmp_path / "checklist.md"
    summary.write_text("# earlier step\n")
    write_markdown("## one\n", md_out, summary)
    write_markdown("## two\n", md_out, summary)
    assert summary.read_text() == "# earlier step\n## one\n\n## two\n\n"
    assert md_out.read_text() == "## two\n"


# --- the real CLI ----------------------------------------------------------------------


@pytest.mark.parametrize("setup, code, fragment", [
    (lambda ev: None, 0, "READY (12 pass)"),
    (lambda ev: edit(ev, "production-backup", evidence={"path": "old.json"}) or (ev / "old.json").write_text(
        json.dumps({"by": "ops", "at": "2025-01-01", "ref": "bk-1", "expires": "2025-01-02"})), 1, "BLOCKED"),
    (lambda ev: edit(ev, "coverage", waiver={"reason": "r", "approver": "cto"}), 2,
     "botctl: error: {file} line {coverage_line}: item 'coverage': waiver is missing expires"),
    (lambda ev: (ev / "checklist.yaml").write_text("version: 1\nitems:\n  - id: a\n    title: x: y\n"), 2,
     "botctl: error: {file} line 4: invalid YAML"),
    (lambda ev: (ev / "rehearsal.json").unlink(), 2, "INCOMPLETE"),
])
def test_cli_exit_codes(ev, db_url, setup, code, fragment):
    setup(ev)
    r = botctl("checklist", "--file", str(ev / "checklist.yaml"), "--db", db_url)
    assert r.returncode == code, (r.stdout, r.stderr)
    text = (ev / "checklist.yaml").read_text().splitlines()
    coverage_line = next((n for n, line in enumerate(text, 1) if line.endswith("id: coverage")), 0)
    assert fragment.format(file=ev / "checklist.yaml", coverage_line=coverage_line) in r.stderr
    assert "Traceback" not in r.stderr
    if code == 2 and "error" in fragment:
        assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_cli_json_flags_and_step_summary(ev, db_url, tmp_path):
    summary, md_out = tmp_path / "summary.md", tmp_path / "out" / "checklist.md"
    summary.write_text("# earlier step\n")
    md_out.parent.mkdir()
    r = botctl("checklist", "-f", str(ev / "checklist.yaml"), "--db", db_url, "-o", "json", "-q",
               "--coverage", str(ev / "cobertura-low.xml"), "--md-out", str(md_out),
               env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.returncode == 1 and r.stderr == "", r.stderr
    doc = json.loads(r.stdout)
    assert_documented_shape(doc)
    assert [i["id"] for i in doc["items"] if i["status"] != "pass"] == ["coverage"]
    assert summary.read_text().startswith("# earlier step\n## Pre-production checklist: BLOCKED")
    assert md_out.read_text() in summary.read_text() and md_out.read_text().count("\n| ") == 13


@pytest.mark.parametrize("fmt", ["junit", "md", "table"])
def test_cli_other_formats_parse(ev, db_url, fmt):
    r = botctl("checklist", "-f", str(ev / "checklist.yaml"), "--db", db_url, "-o", fmt)
    assert r.returncode == 0, r.stderr
    if fmt == "junit":
        assert len(ET.fromstring(r.stdout).find("testsuite").findall("testcase")) == 12
    else:
        assert sum("migrations-applied" in line for line in r.stdout.splitlines()) == 1


def test_automated_only_skips_attestations_and_nothing_else(ev, db_url):
    results = evaluate(load_checklist(ev / "checklist.yaml"), Context(now=NOW, db=db_url, automated_only=True))
    by_kind = {}
    for r in results:
        by_kind.setdefault(r.kind, set()).add(r.status)
    assert by_kind == {"automated": {"pass"}, "attestation": {"skip"}}
    assert verdict(results) == ("ready", 0)
