"""Every stored query, exactly as sent, passes Microsoft's Kusto parser with semantic analysis.

The analysis runs in Node.js with @kusto/language-service-next (tests/kusto/check.js)
against both App Insights schemas, declared from kql/schemas.py. Any diagnostic,
the analyzers' suggestions included, fails. CI installs the package with
``npm ci --prefix tests/kusto``.
"""

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kql.queries import load_queries
from kql.render import TimeRange, alert_query_text, auto_bin, query_text
from kql.schemas import columns

ROOT = Path(__file__).resolve().parents[2]
KUSTO_DIR = ROOT / "tests" / "kusto"
NODE = shutil.which("node")
PACKAGE = KUSTO_DIR / "node_modules" / "@kusto" / "language-service-next"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node (Node.js) is not on PATH"),
    pytest.mark.skipif(not PACKAGE.is_dir(),
                       reason="tests/kusto/node_modules/@kusto/language-service-next is not installed: "
                              "run npm ci --prefix tests/kusto"),
]

QUERIES = load_queries()
DAY = TimeRange(datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 2, tzinfo=timezone.utc))
WEEK = TimeRange(datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 8, tzinfo=timezone.utc))


def analyse(queries: list[dict]) -> dict[str, list[dict]]:
    request = {"schemas": {s: columns(s) for s in ("classic", "workspace")}, "queries": queries}
    proc = subprocess.run([NODE, str(KUSTO_DIR / "check.js")], input=json.dumps(request), text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    results = {r["id"]: r["diagnostics"] for r in json.loads(proc.stdout)["results"]}
    assert (proc.returncode == 1) == any(results.values())
    return results


def sent_texts() -> list[dict]:
    """Each stored query as botctl metrics sends it for both schemas and two ranges, and each alert."""
    items = []
    for query in QUERIES.values():
        for schema in ("classic", "workspace"):
            for name, span in (("24h", DAY), ("7d", WEEK)):
                width = auto_bin(span.duration, query.bin) if query.bin else None
                items.append({"id": f"{query.name} {schema} {name}", "schema": schema,
                              "text": query_text(query, schema, span, width)})
            if query.threshold:
                items.append({"id": f"{query.name} {schema} alert", "schema": schema,
                              "text": alert_query_text(query, schema)})
    return items


def test_every_stored_query_has_zero_diagnostics_on_both_schemas():
    items = sent_texts()
    assert len(items) == len(QUERIES) * 4 + 3 * 2
    results = analyse(items)
    failing = {k: [f"{d['code']} {d['message']} at {d['line']}:{d['column']} ({d['text']})" for d in v]
               for k, v in results.items() if v}
    assert failing == {}


def originals() -> list[str]:
    """The release note's five queries, from docs/kql.md."""
    text = (ROOT / "docs" / "kql.md").read_text(encoding="utf-8")
    block = re.search(r"## The release note's originals.*?```kql\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("traces")]


def test_the_check_rejects_the_release_note_query_2_and_flags_contains_in_all_originals():
    queries = originals()
    assert len(queries) == 5
    results = analyse([{"id": str(n), "schema": "classic", "text": q} for n, q in enumerate(queries, 1)])
    errors = {n: [d for d in diags if d["severity"] == "Error"] for n, diags in results.items()}
    assert [(d["code"], d["text"]) for d in errors["2"]] == [("KS142", "telefono")]
    assert "'telefono' does not refer to any known column" in errors["2"][0]["message"]
    assert all(not errors[n] for n in ("1", "3", "4", "5"))
    for diags in results.values():
        assert any(d["code"] == "KS500" and d["text"] == "contains" for d in diags)


def test_the_check_knows_each_schema_s_own_table_names():
    results = analyse([
        {"id": "classic names on workspace", "schema": "workspace", "text": "traces | take 1"},
        {"id": "workspace names on classic", "schema": "classic", "text": "AppRequests | take 1"},
        {"id": "wrong column type", "schema": "workspace",
         "text": "AppRequests | summarize sum(ResultCode)"},
        {"id": "fine", "schema": "workspace", "text": "AppRequests | summarize sum(ItemCount)"},
    ])
    assert [d["code"] for d in results["classic names on workspace"]] == ["KS204"]
    assert [d["code"] for d in results["workspace names on classic"]] == ["KS204"]
    assert results["wrong column type"] and results["fine"] == []


def test_every_workbook_query_has_zero_diagnostics_once_the_portal_expands_the_time_range():
    """The workbook's texts (botctl dashboard export), with {TimeRange:start}/{TimeRange:end}
    replaced by the datetime literals the portal substitutes, threshold series included."""
    from kql import workbook
    from kql.render import kql_datetime

    limits = {q.threshold.config_key: 1.5 for q in QUERIES.values() if q.threshold}
    items = []
    for schema in ("classic", "workspace"):
        doc = workbook.workbook(list(QUERIES.values()), limits, schema)
        for item in doc["items"]:
            if item["type"] == 3:
                text = item["content"]["query"].replace("{TimeRange:start}", kql_datetime(DAY.start)) \
                                               .replace("{TimeRange:end}", kql_datetime(DAY.end))
                assert not re.search(r"\{[A-Za-z_]\w*(:\w+)?\}", text)  # no other workbook parameter is left
                items.append({"id": f"{item['name']} {schema}", "schema": schema, "text": text})
    assert len(items) == 2 * len(QUERIES)
    results = analyse(items)
    assert {k: v for k, v in results.items() if v} == {}
