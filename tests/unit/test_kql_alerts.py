"""botctl alerts export: scheduled query rules from the stored thresholds and the configured limits."""

import json
import re

import pytest

from bot_core.config import load_config
from cli.app import main
from kql.alerts import arm_template, bicep, evaluation_frequency, iso_duration, rules
from kql.queries import load_queries
from kql.render import alert_query_text

QUERIES = [q for q in load_queries().values() if q.threshold]
LIMITS = {"alerts.error_rate_percent": 2.0, "alerts.p95_latency_ms": 3000.0, "alerts.concurrency_retries_per_hour": 20}


def test_three_rules_with_the_release_thresholds():
    by_name = {r["name"]: r for r in rules(QUERIES, LIMITS)}
    assert {n: (r["metricMeasureColumn"], r["threshold"], r["windowSize"]) for n, r in by_name.items()} == {
        "error_rate": ("error_rate_percent", 2.0, "PT15M"),
        "p95_latency": ("p95_ms", 3000.0, "PT15M"),
        "concurrency_retries": ("retries", 20, "PT1H"),
    }
    assert by_name["concurrency_retries"]["evaluationFrequency"] == "PT15M"
    assert by_name["error_rate"]["evaluationFrequency"] == "PT5M"


def test_arm_template_is_deployable_shape():
    template = arm_template(QUERIES, LIMITS)
    assert set(template["parameters"]) == {"appInsightsResourceId", "location", "namePrefix", "actionGroupIds"}
    used = set(re.findall(r"parameters\('(\w+)'\)", json.dumps(template)))
    assert used == set(template["parameters"])
    for resource in template["resources"]:
        assert resource["type"] == "Microsoft.Insights/scheduledQueryRules" and resource["kind"] == "LogAlert"
        props = resource["properties"]
        assert props["scopes"] == ["[parameters('appInsightsResourceId')]"]
        (criterion,) = props["criteria"]["allOf"]
        assert criterion["operator"] == "GreaterThan" and criterion["timeAggregation"] == "Maximum"
        assert criterion["query"].startswith("let _from = now() - ")
        assert criterion["metricMeasureColumn"] in criterion["query"]


def test_bicep_carries_the_same_queries_verbatim():
    text = bicep(QUERIES, LIMITS)
    assert text.count("resource ") == 3
    assert "resource concurrencyRetries 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {" in text
    for query in QUERIES:
        assert "query: '''\n" + alert_query_text(query) + "'''" in text
    assert "name: '${namePrefix}-p95-latency'" in text
    assert "scopes: [\n      appInsightsResourceId\n    ]" in text
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize("minutes, expected", [(5, "PT5M"), (60, "PT1H"), (90, "PT90M"), (1440, "P1D")])
def test_iso_durations(minutes, expected):
    from datetime import timedelta
    assert iso_duration(timedelta(minutes=minutes)) == expected


def test_evaluation_frequency_is_a_quarter_of_the_window_at_least_5_minutes():
    from datetime import timedelta
    assert evaluation_frequency(timedelta(hours=1)) == timedelta(minutes=15)
    assert evaluation_frequency(timedelta(minutes=10)) == timedelta(minutes=5)
    assert evaluation_frequency(timedelta(minutes=2)) == timedelta(minutes=2)


def test_export_uses_configured_thresholds(capsys, monkeypatch):
    monkeypatch.setenv("BOTCTL_ALERTS_ERROR_RATE_PERCENT", "5")
    assert load_config()["alerts.error_rate_percent"] == 5.0
    assert main(["alerts", "export", "--format", "arm"]) == 0
    out, err = capsys.readouterr()
    thresholds = {r["properties"]["criteria"]["allOf"][0]["metricMeasureColumn"]:
                  r["properties"]["criteria"]["allOf"][0]["threshold"] for r in json.loads(out)["resources"]}
    assert thresholds == {"error_rate_percent": 5.0, "p95_ms": 3000.0, "retries": 20}
    assert "rule error_rate: error_rate_percent > 5 over PT15M, every PT5M" in err


def test_export_refuses_an_unknown_format(capsys):
    assert main(["alerts", "export", "--format", "terraform"]) == 2
    assert "--format must be one of arm, bicep" in capsys.readouterr().err
