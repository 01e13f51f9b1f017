"""``botctl dashboard export``: the workbook holds every stored query as --show-query prints it,
and its JSON has the structure the portal accepts.

``workbook_problems`` is this test's model of what the Azure portal's workbook editor needs
from a ``Notebook/1.0`` document (Microsoft's schema/workbook.json in
Application-Insights-Workbooks is deliberately loose, so the rules are spelled out here):
items with a known type and a unique name; parameter items declaring each parameter once
with a valid name and type, a time-range parameter with a selectable default; query items
(``KqlItem/1.0``) with a logs ``queryType`` 0, a resource type, a known visualization, a
size, every ``{Parameter}`` / ``{Parameter:option}`` they use declared by an earlier
parameter item with an option that parameter type has, and ``timeContextFromParameter``
naming a time-range parameter. Each rule is seen to fire on a planted bad workbook.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone

import pytest

from kql import workbook as wb
from kql.queries import load_queries
from kql.render import kql_datetime, kql_timespan
from tests.conftest import botctl

QUERIES = load_queries()
LIMITS = {"alerts.error_rate_percent": 2.0, "alerts.p95_latency_ms": 3000.0,
          "alerts.concurrency_retries_per_hour": 20}

ITEM_TYPES = {1: "text", 3: "query", 9: "parameters", 10: "metric", 11: "links", 12: "group"}
VISUALIZATIONS = {"table", "timechart", "barchart", "areachart", "linechart", "scatterchart", "piechart",
                  "categoricalbar", "unstackedbar", "tiles", "stat", "graph", "map", "card"}
RESOURCE_TYPES = {"microsoft.insights/components", "microsoft.operationalinsights/workspaces"}
PARAMETER_TYPES = {1: "text", 2: "dropdown", 4: "time range", 5: "resource", 6: "subscription",
                   7: "resource type", 8: "location", 10: "options group", 12: "multi-value"}
TIME_OPTIONS = {None, "start", "end", "grain", "label", "value", "query"}
_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def workbook_problems(doc) -> list[str]:
    """Every reason the portal would refuse or misrender *doc*; [] when it is a valid workbook."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the workbook is not a JSON object"]
    if doc.get("version") != "Notebook/1.0":
        problems.append(f"version must be Notebook/1.0, not {doc.get('version')!r}")
    if "$schema" in doc and doc["$schema"] != wb.WORKBOOK_SCHEMA:
        problems.append("unknown $schema")
    for key in ("fallbackResourceIds", "defaultResourceIds"):
        if key in doc and not (isinstance(doc[key], list) and all(isinstance(x, str) for x in doc[key])):
            problems.append(f"{key} must be a list of resource ids")
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        return problems + ["items must be a non-empty list"]
    names: set[str] = set()
    declared: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("content"), dict):
            problems.append(f"{where}: an item is an object with a content object")
            continue
        kind, content, name = item.get("type"), item["content"], item.get("name")
        if kind not in ITEM_TYPES:
            problems.append(f"{where}: unknown item type {kind!r}")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: no name")
        elif name in names:
            problems.append(f"{where}: duplicate name {name!r}")
        names.add(name if isinstance(name, str) else "")
        if kind == 1 and not (isinstance(content.get("json"), str) and content["json"].strip()):
            problems.append(f"{where}: a text item needs its markdown in content.json")
        if kind == 9:
            problems += _parameter_problems(where, content, declared)
        if kind == 3:
            problems += _query_problems(where, content, declared)
    return problems


def _parameter_problems(where: str, content: dict, declared: dict[str, int]) -> list[str]:
    problems = []
    if content.get("version") != "KqlParameterItem/1.0":
        problems.append(f"{where}: parameters version must be KqlParameterItem/1.0")
    params = content.get("parameters")
    if not isinstance(params, list) or not params:
        return problems + [f"{where}: parameters must be a non-empty list"]
    ids = set()
    for p in params:
        name, ptype = p.get("name"), p.get("type")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{where}: parameter name {name!r} must be letters, digits and _")
            continue
        if name in declared:
            problems.append(f"{where}: parameter {name} declared twice")
        if ptype not in PARAMETER_TYPES:
            problems.append(f"{where}: parameter {name} has unknown type {ptype!r}")
        if not isinstance(p.get("id"), str) or p.get("id") in ids:
            problems.append(f"{where}: parameter {name} needs a unique id")
        ids.add(p.get("id"))
        if ptype == 4:
            choices = [v.get("durationMs") for v in p.get("typeSettings", {}).get("selectableValues", [])]
            default = (p.get("value") or {}).get("durationMs")
            if not choices or not all(isinstance(c, int) and c > 0 for c in choices):
                problems.append(f"{where}: time range {name} needs positive selectable durationMs values")
            if default not in choices:
                problems.append(f"{where}: time range {name} default {default!r} is not selectable")
        declared[name] = ptype
    return problems


def _query_problems(where: str, content: dict, declared: dict[str, int]) -> list[str]:
    problems = []
    if content.get("version") != "KqlItem/1.0":
        problems.append(f"{where}: query version must be KqlItem/1.0")
    if content.get("queryType") != 0:
        problems.append(f"{where}: queryType must be 0 (logs), not {content.get('queryType')!r}")
    if content.get("resourceType") not in RESOURCE_TYPES:
        problems.append(f"{where}: unknown resourceType {content.get('resourceType')!r}")
    if content.get("visualization") not in VISUALIZATIONS:
        problems.append(f"{where}: unknown visualization {content.get('visualization')!r}")
    if content.get("size") not in (0, 1, 2, 3, 4):
        problems.append(f"{where}: size must be 0..4")
    query = content.get("query")
    if not isinstance(query, str) or not query.strip():
        return problems + [f"{where}: empty query"]
    for name, option in _TOKEN.findall(query):
        if name not in declared:
            problems.append(f"{where}: query uses {{{name}}}, declared by no earlier parameter item")
        elif declared[name] == 4 and (option or None) not in TIME_OPTIONS:
            problems.append(f"{where}: time range {name} has no option {option!r}")
    time_param = content.get("timeContextFromParameter")
    if time_param is not None and declared.get(time_param) != 4:
        problems.append(f"{where}: timeContextFromParameter {time_param!r} is no earlier time range parameter")
    for label in (content.get("chartSettings") or {}).get("seriesLabelSettings", []):
        if not isinstance(label.get("seriesName"), str) or label["seriesName"] not in query:
            problems.append(f"{where}: series label for {label.get('seriesName')!r}, a column the query lacks")
    return problems


@pytest.fixture(scope="module", params=["classic", "workspace"])
def exported(request):
    r = botctl("dashboard", "export", "--format", "workbook", "--schema", request.param)
    assert r.returncode == 0, r.stderr
    return request.param, json.loads(r.stdout)


def query_items(doc) -> dict[str, dict]:
    return {i["name"].removeprefix("query - "): i["content"] for i in doc["items"] if i["type"] == 3}


def test_the_exported_workbook_is_valid_and_holds_every_stored_query_with_its_render_kind(exported):
    schema, doc = exported
    assert workbook_problems(doc) == []
    items = query_items(doc)
    assert list(items) == list(QUERIES)
    assert {n: c["visualization"] for n, c in items.items()} == {
        n: {"timechart": "timechart", "columnchart": "categoricalbar", "table": "table"}[q.render]
        for n, q in QUERIES.items()}
    assert {c["resourceType"] for c in items.values()} == {wb.RESOURCE_TYPES[schema]}
    assert all(c["timeContextFromParameter"] == "TimeRange" for c in items.values())
    (param,) = [p for i in doc["items"] if i["type"] == 9 for p in i["content"]["parameters"]]
    assert (param["name"], param["type"], param["value"]["durationMs"]) == ("TimeRange", 4, 86_400_000)
    assert ("AppTraces" in items["ai_timeouts"]["query"]) == (schema == "workspace")


def test_each_query_is_the_show_query_text_for_the_same_range_and_bin(exported):
    schema, doc = exported
    start, end = datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 2, 6, tzinfo=timezone.utc)
    for name, content in query_items(doc).items():
        query = QUERIES[name]
        width = wb.workbook_bin(query)
        args = ["metrics", name, "--show-query", "--from", "2024-05-01T00:00:00Z", "--to", "2024-05-02T06:00:00Z"]
        if width is not None:
            args += ["--bin", kql_timespan(width)]
        if schema == "workspace":
            args += ["--source", "appinsights", "--workspace", "00000000-0000-0000-0000-000000000000"]
        r = botctl(*args)
        assert r.returncode == 0, r.stderr
        shown = r.stdout.removeprefix(f"// {name}\n").rstrip("\n") + "\n"
        expanded = content["query"].replace("{TimeRange:start}", kql_datetime(start)) \
                                   .replace("{TimeRange:end}", kql_datetime(end))
        if query.threshold is None:
            assert expanded == shown, name
        else:  # the one addition: the limit as a constant series, named after the column
            column, limit = query.threshold.column, LIMITS[query.threshold.config_key]
            assert expanded == shown + f"| extend {column}_limit = real({float(limit)!r})\n", name


def test_thresholds_are_drawn_where_a_query_has_one(exported):
    _, doc = exported
    items = query_items(doc)
    with_threshold = {n for n, q in QUERIES.items() if q.threshold}
    assert with_threshold == {"concurrency_retries", "error_rate", "p95_latency"}
    for name, content in items.items():
        labels = (content.get("chartSettings") or {}).get("seriesLabelSettings", [])
        if name in with_threshold:
            column = QUERIES[name].threshold.column
            assert [lab["seriesName"] for lab in labels] == [f"{column}_limit"]
            assert f"{LIMITS[QUERIES[name].threshold.config_key]:g}" in labels[0]["label"]
        else:
            assert labels == [] and "_limit" not in content["query"]


def test_a_configured_limit_reaches_the_workbook(tmp_path):
    (tmp_path / "botctl.yaml").write_text("alerts:\n  p95_latency_ms: 1234\n")
    r = botctl("dashboard", "export", "--config", str(tmp_path / "botctl.yaml"))
    assert r.returncode == 0, r.stderr
    assert "| extend p95_ms_limit = real(1234.0)\n" in query_items(json.loads(r.stdout))["p95_latency"]["query"]


def test_the_arm_format_is_one_workbook_resource_with_the_same_document():
    arm = botctl("dashboard", "export", "--format", "arm", "--schema", "workspace")
    plain = botctl("dashboard", "export", "--format", "workbook", "--schema", "workspace")
    assert arm.returncode == plain.returncode == 0, arm.stderr + plain.stderr
    template = json.loads(arm.stdout)
    assert template["$schema"].endswith("deploymentTemplate.json#")
    (resource,) = template["resources"]
    assert (resource["type"], resource["kind"], resource["apiVersion"]) == (
        "Microsoft.Insights/workbooks", "shared", wb.WORKBOOKS_API_VERSION)
    props = resource["properties"]
    assert props["sourceId"] == "[parameters('workbookSourceId')]" and props["category"] == "workbook"
    assert json.loads(props["serializedData"]) == json.loads(plain.stdout)
    assert workbook_problems(json.loads(props["serializedData"])) == []
    # A string value starting with "[" is an ARM expression: only the intended ones may.
    expressions = [v for v in _strings(template) if v.startswith("[")]
    assert all(re.fullmatch(r"\[(parameters|resourceGroup|newGuid|resourceId)\(.*\)(\.\w+)?\]", e) for e in expressions)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_the_export_is_stable_and_bad_options_are_one_line_exit_2():
    first, second = botctl("dashboard", "export"), botctl("dashboard", "export")
    assert first.stdout == second.stdout
    for args, fragment in ((["--format", "grafana"], "--format must be one of workbook, arm"),
                           (["--schema", "legacy"], "--schema must be one of classic, workspace")):
        r = botctl("dashboard", "export", *args)
        assert r.returncode == 2 and r.stdout == "", r.stdout
        assert r.stderr.strip().splitlines() == [f"botctl: error: {fragment}, not '{args[1]}'"]


GOOD = wb.workbook(list(QUERIES.values()), LIMITS, "classic")


def _first(doc, kind):
    return next(i for i in doc["items"] if i["type"] == kind)


def _plant(mutate):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    return doc


PLANTED = {
    "wrong version": (lambda d: d.update(version="Notebook/2.0"), "version must be Notebook/1.0"),
    "no items": (lambda d: d.update(items=[]), "items must be a non-empty list"),
    "unknown item type": (lambda d: d["items"][0].update(type=7), "unknown item type 7"),
    "duplicate name": (lambda d: d["items"][3].update(name=d["items"][2]["name"]), "duplicate name"),
    "empty text": (lambda d: _first(d, 1)["content"].update(json=" "), "needs its markdown"),
    "query version": (lambda d: _first(d, 3)["content"].update(version="KqlItem/2.0"), "KqlItem/1.0"),
    "metrics queryType": (lambda d: _first(d, 3)["content"].update(queryType=1), "queryType must be 0"),
    "render name as visualization": (lambda d: _first(d, 3)["content"].update(visualization="columnchart"),
                                     "unknown visualization 'columnchart'"),
    "no resource type": (lambda d: _first(d, 3)["content"].pop("resourceType"), "unknown resourceType None"),
    "bad size": (lambda d: _first(d, 3)["content"].update(size=9), "size must be 0..4"),
    "empty query": (lambda d: _first(d, 3)["content"].update(query=""), "empty query"),
    "undeclared parameter": (lambda d: _first(d, 3)["content"].update(
        query=_first(d, 3)["content"]["query"].replace("{TimeRange:start}", "{Range:start}")),
        "query uses {Range}, declared by no earlier parameter item"),
    "bad time option": (lambda d: _first(d, 3)["content"].update(
        query=_first(d, 3)["content"]["query"].replace("{TimeRange:end}", "{TimeRange:finish}")),
        "time range TimeRange has no option 'finish'"),
    "parameters after the queries": (lambda d: d["items"].append(d["items"].pop(1)), "declared by no earlier"),
    "time context from nowhere": (lambda d: _first(d, 3)["content"].update(timeContextFromParameter="Window"),
                                  "timeContextFromParameter 'Window'"),
    "parameter declared twice": (lambda d: d["items"].insert(2, copy.deepcopy(d["items"][1]) | {"name": "p2"}),
                                 "parameter TimeRange declared twice"),
    "parameter name with a space": (lambda d: _first(d, 9)["content"]["parameters"][0].update(name="Time Range"),
                                    "parameter name 'Time Range'"),
    "unknown parameter type": (lambda d: _first(d, 9)["content"]["parameters"][0].update(type=99),
                               "unknown type 99"),
    "default not selectable": (lambda d: _first(d, 9)["content"]["parameters"][0].update(
        value={"durationMs": 5}), "default 5 is not selectable"),
    "label for a missing series": (lambda d: next(
        i for i in d["items"] if i["type"] == 3 and "chartSettings" in i["content"])["content"]["chartSettings"]
        ["seriesLabelSettings"][0].update(seriesName="nope_limit"), "series label for 'nope_limit'"),
}


def test_the_good_workbook_has_no_problem():
    assert workbook_problems(GOOD) == []


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_each_planted_fault_is_reported(case):
    mutate, fragment = PLANTED[case]
    problems = workbook_problems(_plant(mutate))
    assert any(fragment in p for p in problems), problems
