"""An Azure Monitor workbook of the stored queries (``botctl dashboard export``).

A workbook is the portal's own dashboard document (``Notebook/1.0``): a list of
items, here one parameters item (type 9) holding a ``TimeRange`` picker, then
per stored query a text item (type 1) with its description and threshold, and a
query item (type 3, ``KqlItem/1.0``, ``queryType`` 0 = logs) with the render
kind as its visualization. Two renderings of one document:

* ``workbook``: the gallery template JSON, pasted into the portal's Advanced
  Editor (Workbooks → New → ``</>``) or committed to a gallery;
* ``arm``: a deployment template with one ``Microsoft.Insights/workbooks``
  resource whose ``serializedData`` is that JSON.

Each query's text is :func:`kql.render.workbook_query_text`: the prelude and body
``botctl metrics --show-query`` prints, with the range left to the workbook's
``{TimeRange:start}``/``{TimeRange:end}``. Its bin is the stored one, or, for a
query with a threshold, the alert window (as ``metrics --check`` and ``alerts
export`` use), so the threshold compares the number it is about. A threshold is
drawn as one more series: the query gets a last line ``| extend COLUMN_limit =
LIMIT`` (workbook charts of log queries have no reference line of their own).

Standard library only.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from kql.alerts import iso_duration
from kql.queries import StoredQuery
from kql.render import SCHEMAS, kql_timespan, schema_prelude, workbook_query_text

FORMATS = ("workbook", "arm")
NOTEBOOK_VERSION = "Notebook/1.0"
WORKBOOK_SCHEMA = "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json"
ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
WORKBOOKS_API_VERSION = "2022-04-01"
TIME_PARAMETER = "TimeRange"
#: The stored render kind → the workbook's visualization of a logs query.
VISUALIZATIONS = {"timechart": "timechart", "columnchart": "categoricalbar", "table": "table"}
#: What a query item runs against, per schema.
RESOURCE_TYPES = {"classic": "microsoft.insights/components",
                  "workspace": "microsoft.operationalinsights/workspaces"}
_HOUR_MS = 3_600_000
TIME_RANGES_MS = (_HOUR_MS, 4 * _HOUR_MS, 12 * _HOUR_MS, 24 * _HOUR_MS, 48 * _HOUR_MS,
                  72 * _HOUR_MS, 168 * _HOUR_MS)
DEFAULT_RANGE_MS = 24 * _HOUR_MS
# Stable ids, so an export of the same queries is byte for byte the same file.
_NAMESPACE = uuid.UUID("5b0c7f3e-1f0a-4c47-9a39-0e4a8f0c7b15")


def workbook_bin(query: StoredQuery) -> timedelta | None:
    """The bin of the query in the workbook: the alert window where there is a threshold."""
    return query.window if query.threshold is not None else query.bin


def limit_column(query: StoredQuery) -> str | None:
    return f"{query.threshold.column}_limit" if query.threshold is not None else None


def item_query(query: StoredQuery, schema: str, limit: float | None) -> str:
    """The query item's text: the ``--show-query`` text, plus the threshold series when there is one."""
    text = workbook_query_text(query, schema, workbook_bin(query))
    if query.threshold is not None:
        text += f"| extend {limit_column(query)} = {_real(limit)}\n"
    return text


def _real(value: float | None) -> str:
    if value is None:
        raise ValueError("a query with a threshold needs its limit")
    return f"real({float(value)!r})"


def _description(query: StoredQuery, limit: float | None) -> str:
    lines = [f"### {query.title}", "", query.description]
    if query.threshold is not None:
        lines += ["", f"Alert line: **{query.threshold.column} > {float(limit):g}** "
                      f"(`{query.threshold.config_key}`) per {kql_timespan(query.window)} bin, "
                      f"the rule `botctl alerts export` deploys."]
    return "\n".join(lines)


def _parameters(schema: str) -> dict[str, Any]:
    return {
        "type": 9,
        "content": {
            "version": "KqlParameterItem/1.0",
            "parameters": [{
                "id": str(uuid.uuid5(_NAMESPACE, TIME_PARAMETER)),
                "version": "KqlParameterItem/1.0",
                "name": TIME_PARAMETER,
                "label": "Time range",
                "type": 4,
                "isRequired": True,
                "value": {"durationMs": DEFAULT_RANGE_MS},
                "typeSettings": {"selectableValues": [{"durationMs": ms} for ms in TIME_RANGES_MS],
                                 "allowCustom": True},
            }],
            "style": "pills",
            "queryType": 0,
            "resourceType": RESOURCE_TYPES[schema],
        },
        "name": "parameters",
    }


def _query_item(query: StoredQuery, schema: str, limit: float | None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "version": "KqlItem/1.0",
        "query": item_query(query, schema, limit),
        "size": 0,
        "title": query.title,
        "noDataMessage": "No rows in the selected range.",
        "timeContextFromParameter": TIME_PARAMETER,
        "queryType": 0,
        "resourceType": RESOURCE_TYPES[schema],
        "visualization": VISUALIZATIONS[query.render],
    }
    if query.threshold is not None:
        content["chartSettings"] = {"seriesLabelSettings": [{
            "seriesName": limit_column(query),
            "label": f"alert above {float(limit):g} ({query.threshold.config_key})",
            "color": "redBright",
        }]}
    return {"type": 3, "content": content, "name": f"query - {query.name}"}


def workbook(queries: list[StoredQuery], limits: dict[str, float], schema: str = "classic",
             resource_id: str | None = None) -> dict[str, Any]:
    """The gallery template (``Notebook/1.0``) for *queries*, thresholds from *limits* (by config key)."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}")
    items: list[dict[str, Any]] = [
        {"type": 1, "content": {"json": _intro(schema)}, "name": "intro"},
        _parameters(schema),
    ]
    for query in queries:
        limit = limits[query.threshold.config_key] if query.threshold is not None else None
        items.append({"type": 1, "content": {"json": _description(query, limit)},
                      "name": f"text - {query.name}"})
        items.append(_query_item(query, schema, limit))
    doc: dict[str, Any] = {"version": NOTEBOOK_VERSION, "items": items}
    if resource_id:
        doc["fallbackResourceIds"] = [resource_id]
    doc["$schema"] = WORKBOOK_SCHEMA
    return doc


def _intro(schema: str) -> str:
    tables = "traces, requests" if schema == "classic" else "AppTraces, AppRequests (workspace)"
    mapped = " The workspace tables are mapped onto the classic names by a `let` prelude." \
        if schema_prelude(schema) else ""
    return ("## botctl metrics\n\nThe stored queries of `kql/` (exported by `botctl dashboard export`), "
            f"over {tables}.{mapped} Each chart is the query `botctl metrics --show-query` prints for "
            "the selected range; red lines are the alert thresholds.")


def arm_template(queries: list[StoredQuery], limits: dict[str, float], schema: str = "classic",
                 resource_id: str | None = None) -> dict[str, Any]:
    """A deployment template holding the workbook as a ``Microsoft.Insights/workbooks`` resource."""
    data = json.dumps(workbook(queries, limits, schema, resource_id), ensure_ascii=False)
    target = "Application Insights component" if schema == "classic" else "Log Analytics workspace"
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"description": "Azure Monitor workbook exported by `botctl dashboard export` "
                                    "from the stored KQL queries."},
        "parameters": {
            "workbookSourceId": {"type": "string", "metadata": {
                "description": f"Resource id of the {target} the workbook queries."}},
            "workbookDisplayName": {"type": "string", "defaultValue": "botctl metrics"},
            "workbookId": {"type": "string", "defaultValue": "[newGuid()]", "metadata": {
                "description": "The workbook's name: a GUID. Pass the same one to update it in place."}},
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        },
        "resources": [{
            "type": "Microsoft.Insights/workbooks",
            "apiVersion": WORKBOOKS_API_VERSION,
            "name": "[parameters('workbookId')]",
            "location": "[parameters('location')]",
            "kind": "shared",
            "properties": {
                "displayName": "[parameters('workbookDisplayName')]",
                "category": "workbook",
                "version": "1.0",
                "sourceId": "[parameters('workbookSourceId')]",
                "serializedData": data,
            },
        }],
        "outputs": {"workbookResourceId": {
            "type": "string", "value": "[resourceId('Microsoft.Insights/workbooks', parameters('workbookId'))]"}},
    }


def render(fmt: str, queries: list[StoredQuery], limits: dict[str, float], schema: str = "classic",
           resource_id: str | None = None) -> str:
    build = workbook if fmt == "workbook" else arm_template
    return json.dumps(build(queries, limits, schema, resource_id), indent=2, ensure_ascii=False) + "\n"


def summary_lines(queries: list[StoredQuery], limits: dict[str, float]) -> list[str]:
    """One human line per query item (stderr of the export)."""
    lines = []
    for q in queries:
        width = workbook_bin(q)
        line = f"{q.name}: {VISUALIZATIONS[q.render]}" + (f", bin {kql_timespan(width)}" if width else "")
        if q.threshold is not None:
            line += f", alert line {q.threshold.column} > {limits[q.threshold.config_key]:g} " \
                    f"per {iso_duration(q.window)}"
        lines.append(line)
    return lines
