"""``botctl metrics`` as a library: choose the bins, build each text, run it on one source, judge thresholds.

A *runner* is any ``text -> QueryResult``; :func:`local_runner` and
:func:`appinsights_runner` build the two real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from kql.queries import StoredQuery
from kql.render import TimeRange, auto_bin, iso, kql_timespan, query_text
from kql.result import QueryResult, ThresholdOutcome, evaluate

Runner = Callable[[str], QueryResult]
SOURCES = ("appinsights", "local")


@dataclass
class QueryRun:
    query: StoredQuery
    text: str
    bin: timedelta | None
    result: QueryResult
    threshold: ThresholdOutcome | None = None

    @property
    def status(self) -> str:
        return self.result.status


def bin_for(query: StoredQuery, time_range: TimeRange, override: timedelta | None,
            check: bool) -> timedelta | None:
    """The query's stored bin scaled to the range, unless given; a checked threshold uses its window."""
    if not query.uses_bin:
        return None
    if check and query.window is not None:
        return query.window
    return override or auto_bin(time_range.duration, query.bin)


def text_for(query: StoredQuery, schema: str, time_range: TimeRange, bin: timedelta | None,
             check: bool) -> tuple[timedelta | None, str]:
    """The bin and the text one query runs with: round bins for a range ending now, unless a
    threshold is checked on its window (then the window ending now is one bin)."""
    width = bin_for(query, time_range, bin, check)
    round_bins = time_range.relative and not (check and query.window is not None)
    return width, query_text(query, schema, time_range, width, round_bins=round_bins)


def run_queries(queries: list[StoredQuery], runner: Runner, time_range: TimeRange, *,
                schema: str = "classic", bin: timedelta | None = None, check: bool = False,
                limits: dict[str, float] | None = None) -> list[QueryRun]:
    """Run each query in turn. One the source fails on is kept with status "failed" and the rest
    still run; any other error (authentication above all) stops everything."""
    from kql.appinsights import AzureQueryError
    from kql.local import LocalQueryError

    runs = []
    for query in queries:
        width, text = text_for(query, schema, time_range, bin, check)
        try:
            result = runner(text)
        except (LocalQueryError, AzureQueryError) as exc:
            result = QueryResult([], [], status="failed",
                                 error=getattr(exc, "error", None) or {"code": "QueryFailed", "message": str(exc)})
        run = QueryRun(query, text, width, result)
        if check and query.threshold is not None and result.status != "failed":
            run.threshold = evaluate(query, result, (limits or {})[query.threshold.config_key])
        runs.append(run)
    return runs


def exit_code(runs: list[QueryRun], check: bool) -> int:
    """1 when a threshold is breached (under --check); else 2 when something could not be evaluated; else 0."""
    if check and any(r.threshold is not None and r.threshold.breached for r in runs):
        return 1
    if any(r.status == "failed" for r in runs):
        return 2
    if check and any(r.status == "partial" and r.threshold is not None for r in runs):
        return 2
    return 0


def local_runner(path: str | Path, now: datetime | None) -> Runner:
    from kql import local

    con = local.connect(path)
    return lambda text: local.run(con, text, now)


def appinsights_runner(target: Any, time_range: TimeRange, on_retry: Callable[[str], None] | None = None,
                       client: Any = None, sleep: Callable[[float], None] | None = None) -> Runner:
    from kql import appinsights

    client = client or appinsights.make_client()
    options: dict[str, Any] = {"on_retry": on_retry}
    if sleep is not None:
        options["sleep"] = sleep
    return lambda text: appinsights.run(client, target, text, time_range, **options)


def empty_message(time_range: TimeRange) -> str:
    return f"no rows in {time_range.label()}"


def heading(run: QueryRun, time_range: TimeRange) -> str:
    bin_text = f", bin {kql_timespan(run.bin)}" if run.bin else ""
    return f"# {run.query.name}: {run.query.title}, {time_range.label()}{bin_text}"


def problem_line(run: QueryRun) -> str | None:
    """What went wrong with a partial or failed result, with the service's details."""
    from kql.appinsights import detail_lines

    error = run.result.error
    if not error:
        return None
    what = "partial result" if run.status == "partial" else "failed"
    parts = [f"{error.get('code')}: {error.get('message')}", *detail_lines(error.get("details"))]
    return f"{run.query.name}: {what}: " + "; ".join(parts)


def verdict_line(run: QueryRun) -> str | None:
    t = run.threshold
    if t is None:
        return None
    worst = "no value" if t.worst is None else f"max {t.worst:g}" + (f" at {iso(t.at)}" if t.at else "")
    return (f"check {run.query.name}: {t.column} {worst}, limit {t.limit:g} ({t.config_key}): "
            + ("BREACHED" if t.breached else "ok"))


def chart(run: QueryRun, time_range: TimeRange, width: int) -> str:
    """The terminal chart the query's render kind asks for, or "" (a table, or no rows)."""
    from kql import charts

    if not run.result.rows:
        return ""
    if run.query.render == "timechart" and run.bin:
        return charts.timechart(run.result, time_range, run.bin, width)
    if run.query.render == "columnchart":
        return charts.columnchart(run.result, width)
    return ""


def report(runs: list[QueryRun], time_range: TimeRange, *, source: str, schema: str,
           now: datetime) -> dict[str, Any]:
    """The machine-readable form of a run (``--output json``)."""
    return {
        "source": source,
        "schema": schema,
        "from": iso(time_range.start),
        "to": iso(time_range.end),
        "now": iso(now),
        "queries": [{
            "name": r.query.name,
            "title": r.query.title,
            "render": r.query.render,
            "bin": kql_timespan(r.bin) if r.bin else None,
            "status": r.status,
            "columns": r.result.columns,
            "rows": r.result.rows,
            "message": empty_message(time_range) if r.status != "failed" and not r.result.rows else None,
            "error": r.result.error,
            "threshold": None if r.threshold is None else {
                "column": r.threshold.column, "config_key": r.threshold.config_key,
                "limit": r.threshold.limit, "breached": r.threshold.breached,
                "worst": r.threshold.worst, "at": r.threshold.at, "breaches": r.threshold.breaches,
            },
        } for r in runs],
    }


def resolve_source(source: str | None, app: str | None, workspace: str | None,
                   schema: str | None) -> tuple[str, str, Any]:
    """(source, schema, target) from the options, or a ConfigError naming the clash.

    Defaults: App Insights when --app or --workspace is given, else local; the
    classic schema for --app and local, the workspace schema for --workspace.
    """
    from bot_core.errors import ConfigError
    from kql.appinsights import Target
    from kql.render import SCHEMAS

    if app and workspace:
        raise ConfigError("give --app or --workspace, not both")
    source = source or ("appinsights" if app or workspace else "local")
    if source not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, not {source!r}")
    if schema is not None and schema not in SCHEMAS:
        raise ConfigError(f"--schema must be one of {', '.join(SCHEMAS)}, not {schema!r}")
    if source == "local":
        if app or workspace:
            raise ConfigError("--app/--workspace name an Azure source; drop them or use --source appinsights")
        if schema == "workspace":
            raise ConfigError("the local telemetry uses the classic names (traces, requests): "
                              "--schema workspace needs --source appinsights")
        return source, "classic", None
    if not (app or workspace):
        raise ConfigError("--source appinsights needs --app RESOURCE_ID (the App Insights component) "
                          "or --workspace ID (the Log Analytics workspace)")
    if workspace:
        if schema == "classic":
            raise ConfigError("a workspace names its tables AppTraces/AppRequests: "
                              "use --schema workspace with --workspace, or --app for the classic names")
        return source, "workspace", Target("workspace", workspace)
    return source, schema or "classic", Target("resource", app)
