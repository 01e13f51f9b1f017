"""`botctl metrics --app …` end to end, the real LogsQueryClient answered through azure-core's transport.

The only thing replaced is where the client comes from: ``kql.appinsights.make_client`` hands
back a client built on the recorded transport (see tests/unit/test_kql_appinsights.py).
"""

import json

import pytest

from cli.app import main
from kql import appinsights
from tests.unit.test_kql_appinsights import APP, WORKSPACE, client_for

ARGS = ["--from", "2024-05-01T00:00:00Z", "--to", "2024-05-02T00:00:00Z"]


@pytest.fixture
def recorded(monkeypatch):
    adapters = []

    def use(fixture):
        client, adapter = client_for(fixture)  # built by the real make_client
        adapters.append(adapter)
        monkeypatch.setattr(appinsights, "make_client", lambda credential=None, **options: client)
        monkeypatch.setattr(appinsights.time, "sleep", slept.append)
        return adapters
    slept = []
    use.slept = slept
    return use


def botctl(capsys, *args):
    code = main(["metrics", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_against_app_insights_reports_the_breach(capsys, recorded):
    adapters = recorded("success.json")
    code, out, err = botctl(capsys, "concurrency_retries", "--check", "--app", APP.id, *ARGS, "-o", "json")
    assert code == 1
    report = json.loads(out)
    assert (report["source"], report["schema"], report["from"]) == ("appinsights", "classic", "2024-05-01T00:00:00Z")
    (query,) = report["queries"]
    assert query["bin"] == "1h" and query["threshold"]["breached"] and query["threshold"]["worst"] == 21
    assert "let _bin = 1h;" in json.loads(adapters[0].sent[0].body)["query"]
    assert "BREACHED" in err


def test_partial_result_is_shown_with_the_error_details(capsys, recorded):
    recorded("partial.json")
    code, out, err = botctl(capsys, "concurrency_retries", "--app", APP.id, *ARGS)
    assert code == 0
    assert "2024-05-01T08:00:00Z  4" in out
    assert "warning: concurrency_retries: partial result: PartialError: There were some errors" in err
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in err


def test_partial_result_under_check_could_not_be_evaluated(capsys, recorded):
    recorded("partial.json")
    code, _, _ = botctl(capsys, "concurrency_retries", "--check", "--app", APP.id, *ARGS)
    assert code == 2


def test_throttling_is_retried_and_said(capsys, recorded):
    adapters = recorded("throttled_then_success.json")
    code, out, err = botctl(capsys, "concurrency_retries", "--workspace", WORKSPACE.id, *ARGS)
    assert code == 0 and len(adapters[0].sent) == 3
    assert recorded.slept == [3.0, 2.0]
    assert err.count("warning: throttled: HTTP 429 ThrottledError") == 2
    assert "2024-05-01T08:00:00Z  4" in out


def test_auth_failure_is_one_clear_line_and_exit_2(capsys, recorded):
    recorded("auth_failure.json")
    code, out, err = botctl(capsys, "--app", APP.id, *ARGS)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("botctl: error: Azure Monitor refused the request (403 InsufficientAccessError")
    assert "az login" in line and "recorded-test-token" not in line


def test_empty_result_says_no_rows_in_the_range(capsys, recorded):
    recorded("empty.json")
    code, out, err = botctl(capsys, "concurrency_retries", "--app", APP.id, *ARGS)
    assert code == 0
    assert out.strip().endswith("no rows in [2024-05-01T00:00:00Z, 2024-05-02T00:00:00Z)")


def test_a_rejected_query_fails_that_query_with_exit_2(capsys, recorded):
    recorded("bad_query.json")
    code, _, err = botctl(capsys, "concurrency_retries", "--app", APP.id, *ARGS)
    assert code == 2
    assert "botctl: error: concurrency_retries: failed: BadArgumentError" in err
