"""Azure Monitor scheduled query rules (log alerts) built from the stored queries that have a threshold.

Each rule runs the query's text over its ``window`` (one bin: see
``bin_from`` in :mod:`kql.render`) every ``evaluation frequency`` and fires
when the threshold column's value is above the configured limit — the same
comparison ``botctl metrics --check`` makes. Rules are scoped to the App
Insights component, whose logs use the classic table names.

Two renderings of one structure: an ARM deployment template (JSON) and Bicep.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Callable

from kql.queries import StoredQuery
from kql.render import alert_query_text

API_VERSION = "2023-12-01"
FORMATS = ("arm", "bicep")


def iso_duration(value: timedelta) -> str:
    """PT5M, PT1H, P1D: the duration form ARM wants for windowSize/evaluationFrequency."""
    minutes = int(value.total_seconds() // 60)
    if minutes * 60 != int(value.total_seconds()) or minutes <= 0:
        raise ValueError(f"alert windows are whole minutes, not {value}")
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    if minutes % 60 == 0:
        return f"PT{minutes // 60}H"
    return f"PT{minutes}M"


def evaluation_frequency(window: timedelta) -> timedelta:
    """A quarter of the window, between 5 minutes and the window itself."""
    return min(window, max(timedelta(minutes=5), window / 4))


def rules(queries: list[StoredQuery], limits: dict[str, float]) -> list[dict[str, Any]]:
    """Rule descriptions (name, properties) for every query with a threshold, limits by config key."""
    out = []
    for query in queries:
        if query.threshold is None or query.window is None:
            continue
        limit = limits[query.threshold.config_key]
        out.append({
            "name": query.name,
            "displayName": f"botctl: {query.title} > {limit:g}",
            "description": f"{query.description} Fires when {query.threshold.column} > {limit:g} "
                           f"({query.threshold.config_key}) over {iso_duration(query.window)}.",
            "severity": query.severity,
            "windowSize": iso_duration(query.window),
            "evaluationFrequency": iso_duration(evaluation_frequency(query.window)),
            "query": alert_query_text(query, "classic"),
            "metricMeasureColumn": query.threshold.column,
            "threshold": limit,
        })
    return out


def _rule_properties(rule: dict[str, Any], scope: Any, action_groups: Any) -> dict[str, Any]:
    return {
        "displayName": rule["displayName"],
        "description": rule["description"],
        "severity": rule["severity"],
        "enabled": True,
        "scopes": [scope],
        "evaluationFrequency": rule["evaluationFrequency"],
        "windowSize": rule["windowSize"],
        "criteria": {"allOf": [{
            "query": rule["query"],
            "timeAggregation": "Maximum",
            "metricMeasureColumn": rule["metricMeasureColumn"],
            "operator": "GreaterThan",
            "threshold": rule["threshold"],
            "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1},
        }]},
        "autoMitigate": True,
        "actions": {"actionGroups": action_groups},
    }


def arm_template(queries: list[StoredQuery], limits: dict[str, float]) -> dict[str, Any]:
    """A deployable ARM template: parameters appInsightsResourceId, location, namePrefix, actionGroupIds."""
    resources = []
    for rule in rules(queries, limits):
        resources.append({
            "type": "Microsoft.Insights/scheduledQueryRules",
            "apiVersion": API_VERSION,
            "name": f"[format('{{0}}-{rule['name'].replace('_', '-')}', parameters('namePrefix'))]",
            "location": "[parameters('location')]",
            "kind": "LogAlert",
            "properties": _rule_properties(rule, "[parameters('appInsightsResourceId')]",
                                           "[parameters('actionGroupIds')]"),
        })
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {"description": "Log alerts exported by `botctl alerts export` from the stored KQL queries."},
        "parameters": {
            "appInsightsResourceId": {"type": "string", "metadata": {
                "description": "Resource id of the Application Insights component the rules query."}},
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "namePrefix": {"type": "string", "defaultValue": "botctl"},
            "actionGroupIds": {"type": "array", "defaultValue": [], "metadata": {
                "description": "Action groups to notify when a rule fires."}},
        },
        "resources": resources,
    }


def arm_json(queries: list[StoredQuery], limits: dict[str, float]) -> str:
    return json.dumps(arm_template(queries, limits), indent=2, ensure_ascii=False) + "\n"


class _Expr(str):
    """Bicep source emitted as is (a parameter reference), not as a string literal."""


def bicep(queries: list[StoredQuery], limits: dict[str, float]) -> str:
    """The same rules as :func:`arm_template`, as a Bicep file."""
    lines = [
        "// Log alerts exported by `botctl alerts export` from the stored KQL queries.",
        "@description('Resource id of the Application Insights component the rules query.')",
        "param appInsightsResourceId string",
        "param location string = resourceGroup().location",
        "param namePrefix string = 'botctl'",
        "@description('Action groups to notify when a rule fires.')",
        "param actionGroupIds array = []",
    ]
    for rule in rules(queries, limits):
        symbol = re.sub(r"_(\w)", lambda m: m.group(1).upper(), rule["name"])
        body = {
            "name": _Expr(f"'${{namePrefix}}-{rule['name'].replace('_', '-')}'"),
            "location": _Expr("location"),
            "kind": "LogAlert",
            "properties": _rule_properties(rule, _Expr("appInsightsResourceId"), _Expr("actionGroupIds")),
        }
        lines += ["", f"resource {symbol} 'Microsoft.Insights/scheduledQueryRules@{API_VERSION}' = "
                  + _bicep_value(body, 0)]
    return "\n".join(lines) + "\n"


def _bicep_value(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, _Expr):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return _bicep_string(value)
    if isinstance(value, dict):
        items = [f"{inner}{_bicep_key(k)}: {_bicep_value(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "\n".join(f"{inner}{_bicep_value(v, depth + 1)}" for v in value) + f"\n{pad}]"
    raise TypeError(f"cannot write {type(value).__name__} as Bicep")


def _bicep_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else _bicep_string(key)


def _bicep_string(text: str) -> str:
    if "\n" in text and "'''" not in text:
        # Multi-line strings are verbatim in Bicep: no escapes, no interpolation.
        return "'''\n" + text + "'''"
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${").replace("\n", "\\n")
    return f"'{escaped}'"


RENDERERS: dict[str, Callable[[list[StoredQuery], dict[str, float]], str]] = {"arm": arm_json, "bicep": bicep}
