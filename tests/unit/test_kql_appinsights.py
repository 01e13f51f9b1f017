"""azure-monitor-query's LogsQueryClient, for real, answered by recorded responses.

The seam is azure-core's transport: a real ``RequestsTransport`` whose
``requests.Session`` has an adapter that answers from
``tests/fixtures/appinsights/*.json`` (shaped as the Log Analytics query API
answers) and keeps what was sent, so the tests also check the URL, the
timespan and the query text on the wire.
"""

import io
import json
import shutil
import time
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.structures import CaseInsensitiveDict

from bot_core.errors import BotctlError
from kql import appinsights
from kql.appinsights import AzureAuthError, AzureQueryError, Target
from kql.queries import load_queries
from kql.render import TimeRange, query_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "appinsights"
APP = Target("resource", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-bot/"
                         "providers/microsoft.insights/components/appi-bot")
WORKSPACE = Target("workspace", "11111111-2222-3333-4444-555555555555")
DAY = TimeRange(datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 2, tzinfo=timezone.utc))
QUERY = load_queries()["concurrency_retries"]


class RecordedAdapter(requests.adapters.BaseAdapter):
    """Answers each request with the next recorded response; keeps the requests."""

    def __init__(self, fixture: str):
        super().__init__()
        self.responses = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))["responses"]
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        recorded = self.responses.pop(0)
        response = requests.Response()
        response.status_code = recorded["status"]
        response.reason = HTTPStatus(recorded["status"]).phrase
        response.headers = CaseInsensitiveDict(recorded["headers"])
        response._content = json.dumps(recorded["body"]).encode()
        response.raw = io.BytesIO(response._content)
        response.encoding = "utf-8"
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


class StaticToken:
    """A TokenCredential that always has a token (the service's answer is what is under test)."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("recorded-test-token", int(time.time()) + 3600)


def client_for(fixture: str, credential=None):
    adapter = RecordedAdapter(fixture)
    session = requests.Session()
    session.mount("https://", adapter)
    client = appinsights.make_client(credential or StaticToken(), transport=RequestsTransport(session=session))
    return client, adapter


def run(fixture: str, target=APP, **kwargs):
    client, adapter = client_for(fixture)
    sleeps, retries = [], []
    text = query_text(QUERY, "classic" if target is APP else "workspace", DAY, QUERY.window)
    result = appinsights.run(client, target, text, DAY, sleep=sleeps.append, on_retry=retries.append, **kwargs)
    return result, adapter, sleeps, retries, text


def test_success_returns_typed_rows_and_sends_range_and_text_to_the_component():
    result, adapter, sleeps, _, text = run("success.json")
    assert result.status == "ok" and result.error is None
    assert result.columns == ["timestamp", "retries"]
    assert result.rows[1] == {"timestamp": datetime(2024, 5, 1, 9, tzinfo=timezone.utc), "retries": 21}
    (request,) = adapter.sent
    assert request.method == "POST"
    assert request.url == f"https://api.loganalytics.io/v1{APP.id}/query"
    assert request.headers["Authorization"] == "Bearer recorded-test-token"
    body = json.loads(request.body)
    assert body["query"] == text
    assert body["timespan"] == "2024-05-01T00:00:00.000Z/2024-05-02T00:00:00.000Z"
    assert sleeps == []


def test_workspace_queries_go_to_query_workspace():
    result, adapter, *_ = run("success.json", target=WORKSPACE)
    assert result.status == "ok"
    assert adapter.sent[0].url == f"https://api.loganalytics.io/v1/workspaces/{WORKSPACE.id}/query"
    assert json.loads(adapter.sent[0].body)["query"].startswith("let traces = AppTraces")


def test_partial_result_keeps_the_rows_and_the_error_details():
    result, *_ = run("partial.json")
    assert result.status == "partial"
    assert result.rows == [{"timestamp": datetime(2024, 5, 1, 8, tzinfo=timezone.utc), "retries": 4}]
    assert result.error["code"] == "PartialError"
    assert appinsights.detail_lines(result.error["details"]) == [
        "EngineError: Query result set has exceeded the internal record count limit 500000 "
        "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"]


def test_throttling_is_retried_with_backoff_honouring_retry_after_and_reported():
    result, adapter, sleeps, retries, _ = run("throttled_then_success.json")
    assert result.status == "ok" and len(result.rows) == 1
    assert len(adapter.sent) == 3
    assert sleeps == [3.0, 2.0]  # Retry-After: 3, then exponential backoff (attempt 2)
    assert retries[0].startswith("throttled: HTTP 429 ThrottledError: Your request has been throttled")
    assert "retrying in 3s (attempt 2/5)" in retries[0] and "(attempt 3/5)" in retries[1]


def test_throttling_gives_up_after_the_last_attempt():
    client, adapter = client_for("throttled_then_success.json")
    with pytest.raises(AzureQueryError, match="HTTP 429 ThrottledError") as info:
        appinsights.run(client, APP, "traces | take 1", DAY, sleep=lambda s: None, max_attempts=2)
    assert len(adapter.sent) == 2 and info.value.error["code"] == "ThrottledError"


def test_refused_credentials_are_a_clear_usage_error():
    with pytest.raises(AzureAuthError) as info:
        run("auth_failure.json")
    message = str(info.value)
    assert "403 InsufficientAccessError" in message and "insufficient access" in message
    assert "az login" in message and APP.id in message
    assert "recorded-test-token" not in message
    assert isinstance(info.value, BotctlError)  # cli.app.main: one line, exit 2


@pytest.mark.skipif(shutil.which("az") is not None, reason="the Azure CLI is installed: it could find a token")
def test_no_credential_at_all_is_a_clear_usage_error_before_any_request():
    from azure.identity import DefaultAzureCredential

    # Only the local, offline credentials (CLI, developer CLI, PowerShell, caches): none has a token here.
    credential = DefaultAzureCredential(exclude_environment_credential=True, exclude_managed_identity_credential=True,
                                        exclude_workload_identity_credential=True)
    client, adapter = client_for("success.json", credential=credential)
    with pytest.raises(AzureAuthError, match="could not get an Azure token .*az login"):
        appinsights.run(client, APP, "traces | take 1", DAY, sleep=lambda s: None)
    assert adapter.sent == []


def test_empty_result_has_columns_and_no_rows():
    result, *_ = run("empty.json")
    assert result.status == "ok" and result.rows == [] and result.columns == ["timestamp", "retries"]


def test_a_rejected_query_is_not_retried_and_says_why():
    with pytest.raises(AzureQueryError, match="HTTP 400 BadArgumentError") as info:
        run("bad_query.json")
    assert info.value.error["code"] == "BadArgumentError"


def test_targets_are_checked():
    with pytest.raises(BotctlError, match="resource id"):
        Target("resource", "appi-bot")
