"""Run stored queries against Application Insights through azure-monitor-query.

Classic schema: ``LogsQueryClient.query_resource`` on the App Insights
component's resource id (``traces``, ``requests``). Workspace schema:
``query_workspace`` on the Log Analytics workspace id, with the prelude of
:mod:`kql.render` mapping ``AppTraces``/``AppRequests``. The timespan is always
explicit and the same range is in the query text.

Throttling (HTTP 429 or a ``ThrottledError``) and transient 502/503/504 are
retried here, with backoff that honours ``Retry-After``, and each retry is
reported; azure-core's own retry is switched off so that it neither retries
silently nor multiplies with ours. Authentication failures raise
:class:`AzureAuthError` (exit 2) with what to do about them.

azure.* is imported inside the functions: ``botctl --help`` must not load it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from bot_core.errors import BotctlError, ConfigError
from kql.render import TimeRange
from kql.result import QueryResult

THROTTLE_CODES = {"ThrottledError", "TooManyRequests", "Throttled"}
TRANSIENT_STATUS = {429, 502, 503, 504}
MAX_ATTEMPTS = 5
MAX_DELAY_SECONDS = 60.0

AUTH_HINT = ("sign in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
             "AZURE_CLIENT_SECRET (or a managed identity); the identity needs read access "
             "(e.g. Monitoring Reader or Log Analytics Reader) on {target}")


class AzureAuthError(BotctlError):
    """No usable credential, or Azure refused it (exit 2)."""


class AzureQueryError(BotctlError):
    """Azure Monitor rejected or failed the query."""

    def __init__(self, message: str, error: dict[str, Any]):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Target:
    """Where to query: an App Insights (or any Azure) resource id, or a workspace id."""

    kind: str  # "resource" | "workspace"
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("resource", "workspace"):
            raise ValueError(self.kind)
        if self.kind == "resource" and not self.id.startswith("/subscriptions/"):
            raise ConfigError("--app takes a resource id: /subscriptions/<id>/resourceGroups/<rg>/"
                              "providers/microsoft.insights/components/<name>")
        if not self.id.strip():
            raise ConfigError("--workspace takes the workspace id (a GUID)")

    def __str__(self) -> str:
        return self.id


def make_client(credential: Any = None, **client_options: Any) -> Any:
    """A LogsQueryClient with DefaultAzureCredential unless told otherwise.

    *client_options* go to the client (``transport=`` is the test seam).
    """
    from bot_core.optional import require

    LogsQueryClient = require("azure.monitor.query", "Application Insights queries").LogsQueryClient
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    client_options.setdefault("retry_total", 0)
    return LogsQueryClient(credential, **client_options)


def run(client: Any, target: Target, text: str, time_range: TimeRange, *,
        sleep: Callable[[float], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        max_attempts: int = MAX_ATTEMPTS) -> QueryResult:
    """Run KQL *text*; retry throttling; return ok or partial rows, or raise."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
    from azure.monitor.query import LogsQueryStatus

    sleep = sleep or time.sleep
    timespan = (time_range.start, time_range.end)
    for attempt in range(1, max_attempts + 1):
        try:
            if target.kind == "resource":
                response = client.query_resource(target.id, text, timespan=timespan)
            else:
                response = client.query_workspace(target.id, text, timespan=timespan)
            break
        except HttpResponseError as exc:
            # The SDK re-raises every error as a plain HttpResponseError; a credential
            # that got no token at all shows only as the exception it replaced.
            cause = exc if isinstance(exc, ClientAuthenticationError) else exc.__context__
            if exc.response is None and isinstance(cause, ClientAuthenticationError):
                first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
                raise AzureAuthError(f"could not get an Azure token ({first_line}); "
                                     + AUTH_HINT.format(target=target)) from None
            error = _error_of(exc)
            if exc.status_code in (401, 403):
                raise AzureAuthError(f"Azure Monitor refused the request ({exc.status_code} "
                                     f"{error['code']}: {error['message']}); "
                                     + AUTH_HINT.format(target=target)) from None
            retryable = exc.status_code in TRANSIENT_STATUS or error["code"] in THROTTLE_CODES
            if not retryable or attempt == max_attempts:
                raise AzureQueryError(_describe("query failed", exc.status_code, error), error) from None
            throttled = exc.status_code == 429 or error["code"] in THROTTLE_CODES
            reason = _describe("throttled" if throttled else "transient error", exc.status_code, error)
            delay = _delay(exc.response, attempt)
        except ServiceRequestError as exc:
            if attempt == max_attempts:
                error = {"code": "ServiceRequestError", "message": str(exc), "details": None}
                raise AzureQueryError(f"could not reach Azure Monitor: {exc}", error) from None
            reason, delay = f"could not reach Azure Monitor ({exc})", _delay(None, attempt)
        if on_retry is not None:
            on_retry(f"{reason}; retrying in {delay:g}s (attempt {attempt + 1}/{max_attempts})")
        sleep(delay)

    if response.status == LogsQueryStatus.PARTIAL:
        error = response.partial_error
        table = response.partial_data[0] if response.partial_data else None
        return _from_table(table, status="partial", error={
            "code": getattr(error, "code", None) or "PartialError",
            "message": getattr(error, "message", None) or "",
            "details": _plain(getattr(error, "details", None))})
    return _from_table(response.tables[0] if response.tables else None)


def _from_table(table: Any, **kwargs: Any) -> QueryResult:
    if table is None:
        return QueryResult([], [], **kwargs)
    return QueryResult.from_tuples(table.columns, [list(row) for row in table.rows], **kwargs)


def _error_of(exc: Any) -> dict[str, Any]:
    """code/message/details of an HttpResponseError, from the SDK's parsed error or the body."""
    model = getattr(exc, "model", None)
    code, message, details = (getattr(model, a, None) for a in ("code", "message", "details"))
    if not code:
        body = _json_body(exc)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code, message, details = err.get("code"), err.get("message") or message, err.get("details")
    return {"code": code or exc.reason or "HttpResponseError", "message": message or exc.message,
            "details": _plain(details)}


def _plain(value: Any) -> Any:
    """The SDK's error models as plain dicts and lists (for JSON output)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json_body(exc: Any) -> Any:
    try:
        return exc.response.json()
    except Exception:  # the body is not JSON: fall back to the reason phrase
        return None


def _delay(response: Any, attempt: int) -> float:
    """``Retry-After`` when the service gives one, else 1, 2, 4, 8… s; at most a minute."""
    backoff = float(2 ** (attempt - 1))
    retry_after = response.headers.get("Retry-After") if response is not None else None
    if retry_after:
        try:
            backoff = float(retry_after)
        except ValueError:
            pass  # an HTTP-date: keep the exponential backoff
    return min(max(backoff, 0.0), MAX_DELAY_SECONDS)


def _describe(what: str, status: int | None, error: dict[str, Any]) -> str:
    text = f"{what}: HTTP {status} {error['code']}: {error['message']}"
    return text + "".join(f"; {d}" for d in detail_lines(error.get("details")))


def detail_lines(details: Any) -> list[str]:
    """One readable line per error detail (innermost message wins)."""
    lines = []
    for detail in details or []:
        if not isinstance(detail, dict):
            lines.append(str(detail))
            continue
        inner = detail
        while isinstance(inner.get("innererror"), dict):
            inner = inner["innererror"]
        code = detail.get("code") or ""
        message = inner.get("message") or detail.get("message") or ""
        lines.append(f"{code}: {message}".strip(": "))
    return lines
