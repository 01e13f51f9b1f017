"""botctl metrics: run the stored KQL queries against Application Insights or the local telemetry."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import OUTPUTS, ConfigOption, OutputOption, QuietOption, check_choice, choices, config


def metrics(
    names: Annotated[Optional[list[str]], typer.Argument(
        help="Stored queries to run (default: all; see --list).", show_default=False)] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Range ending now (or at --to): 30m, 24h, 7d. (default: 24h)", show_default=False)] = None,
    from_: Annotated[Optional[str], typer.Option(
        "--from", help="Range start, ISO-8601 (2024-05-01T08:00:00Z; without a zone: UTC).",
        show_default=False)] = None,
    to: Annotated[Optional[str], typer.Option(
        "--to", help="Range end, ISO-8601 (without a zone: UTC). (default: now)", show_default=False)] = None,
    now: Annotated[Optional[str], typer.Option(
        "--now", help="Pin 'now' (ISO-8601, without a zone: UTC) for reproducible output.",
        show_default=False)] = None,
    bin: Annotated[Optional[str], typer.Option(
        "--bin", help="Bin width (5m, 1h). (default: the query's, scaled to the range)", show_default=False)] = None,
    source: Annotated[Optional[str], typer.Option(
        "--source", **choices(("appinsights", "local")), help="Where the telemetry is. (default: appinsights with --app/--workspace, else local)",
        show_default=False)] = None,
    app: Annotated[Optional[str], typer.Option(
        "--app", metavar="RESOURCE_ID", help="App Insights component resource id (query_resource).",
        show_default=False)] = None,
    workspace: Annotated[Optional[str], typer.Option(
        "--workspace", metavar="ID", help="Log Analytics workspace id (query_workspace).", show_default=False)] = None,
    schema: Annotated[Optional[str], typer.Option(
        "--schema", **choices(("classic", "workspace")), help="classic: traces, requests; workspace: AppTraces, AppRequests. "
                         "(default: workspace with --workspace, else classic)", show_default=False)] = None,
    file: Annotated[Optional[str], typer.Option(
        "--file", help="Local telemetry JSON lines. (default: setting telemetry_file)", show_default=False)] = None,
    output: OutputOption = "table",
    check: Annotated[bool, typer.Option(
        "--check", help="Evaluate thresholds on their alert window; exit 1 when one is breached.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the stored queries and exit.")] = False,
    show_query: Annotated[bool, typer.Option(
        "--show-query", help="Print the exact KQL each query would run, and run nothing.")] = False,
    html: Annotated[Optional[str], typer.Option(
        "--html", help="Also write a self-contained HTML report here: a chart per query, thresholds "
                       "judged on their alert window and drawn.", show_default=False)] = None,
    config_path: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run the stored KQL queries (kql/*.kql) against Application Insights or the local telemetry.

    Results on stdout; charts, warnings and verdicts on stderr.

    Exit 0 ok, 1 a threshold is breached (--check), 2 bad options, failed auth or a query not evaluated.
    """
    from datetime import datetime, timezone

    from bot_core.errors import ConfigError
    from cli.output import Console, render
    from kql import metrics as lib
    from kql.queries import load_queries, parse_timespan, select
    from kql.render import iso, names_zone, parse_datetime, resolve_range, whole_second_after

    check_choice("--output", output, OUTPUTS)
    queries = load_queries()
    if list_:
        render([_listing(q) for q in queries.values()], output)
        return
    chosen = select(queries, names)
    if check:
        if bin:
            raise ConfigError("--check evaluates each threshold on its own window; drop --bin")
        chosen = [q for q in chosen if q.threshold] if not names else chosen
    if output == "csv" and len(chosen) > 1:
        raise ConfigError("--output csv holds one table: name one query (botctl metrics --list)")
    now_at = parse_datetime(now, "--now") if now else whole_second_after(datetime.now(timezone.utc))
    time_range = resolve_range(now_at, since, from_, to)
    for flag, text in (("--from", from_), ("--to", to), ("--now", now)):
        if text and not names_zone(text):
            Console(quiet).info(f"{flag} {text} has no time zone: taken as UTC ({iso(parse_datetime(text, flag))})")
    source, schema, target = lib.resolve_source(source, app, workspace, schema)
    width = parse_timespan(bin, "--bin") if bin else None
    if show_query:
        for query in chosen:
            _, text = lib.text_for(query, schema, time_range, width, check)
            typer.echo(f"// {query.name}\n{text}")
        return

    if html:
        from ops.report_html import check_writable

        check_writable(html)
    console = Console(quiet)
    settings = config(config_path)
    if source == "local":
        runner = lib.local_runner(file or settings["telemetry_file"], now_at)
    else:
        runner = lib.appinsights_runner(target, time_range, on_retry=console.warn)
    limits = {q.threshold.config_key: settings[q.threshold.config_key] for q in chosen if q.threshold}
    runs = lib.run_queries(chosen, runner, time_range, schema=schema, bin=width, check=check or bool(html),
                           limits=limits)
    _show(runs, time_range, output, console, lib.report(runs, time_range, source=source, schema=schema, now=now_at))
    if html:
        from ops.metrics_report import render_html
        from ops.report_html import write

        write(html, render_html(runs, time_range, source=source, schema=schema, now=now_at))
    raise typer.Exit(lib.exit_code(runs, check))


def _listing(query) -> dict:
    from kql.render import kql_timespan

    return {"name": query.name, "title": query.title, "render": query.render,
            "bin": kql_timespan(query.bin) if query.bin else "",
            "threshold": f"{query.threshold.column} > {query.threshold.config_key}" if query.threshold else "",
            "window": kql_timespan(query.window) if query.window else "",
            "description": query.description}


def _show(runs, time_range, output, console, report) -> None:
    """Results on stdout in the chosen format; charts, warnings and verdicts on stderr."""
    import shutil

    from cli.output import render
    from kql import metrics as lib

    if output == "json":
        render(report, "json")
    width = shutil.get_terminal_size((100, 24)).columns
    for index, run in enumerate(runs):
        problem = lib.problem_line(run)
        if problem:
            (console.warn if run.status == "partial" else console.error)(problem)
        rows, evaluated = run.result.rows, run.status != "failed"
        if output == "table":
            if index:
                typer.echo()
            typer.echo(lib.heading(run, time_range))
            if rows:
                render(rows, "table", columns=run.result.columns)
            elif evaluated:
                typer.echo(lib.empty_message(time_range))
            chart = lib.chart(run, time_range, width) if not console.quiet else ""
            if chart:
                console.info(chart)
        elif output == "csv":
            console.info(lib.heading(run, time_range))
            if evaluated:
                render(rows, "csv", columns=run.result.columns)
                if not rows:
                    console.info(lib.empty_message(time_range))
        verdict = lib.verdict_line(run)
        if verdict:
            (console.warn if run.threshold.breached else console.info)(verdict)
