"""botctl dashboard export: an Azure Monitor workbook of the stored KQL queries."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, QuietOption, check_choice, choices, config

app = typer.Typer(help="Azure Monitor workbook of the stored KQL queries.", no_args_is_help=True)


@app.command()
def export(
    fmt: Annotated[str, typer.Option(
        "--format", **choices(("workbook", "arm")), help="workbook: gallery JSON for the portal's Advanced Editor; "
                         "arm: a Microsoft.Insights/workbooks resource.")] = "workbook",
    schema: Annotated[str, typer.Option(
        "--schema", **choices(("classic", "workspace")), help="classic: traces, requests (an App Insights component); "
                         "workspace: AppTraces, AppRequests (a Log Analytics workspace).")] = "classic",
    resource: Annotated[Optional[str], typer.Option(
        "--resource", metavar="RESOURCE_ID", help="Resource the workbook opens on (fallbackResourceIds).",
        show_default=False)] = None,
    config_path: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write an Azure Monitor workbook of every stored query to stdout.

    Each query with its render kind, a time-range picker, and the alert thresholds
    (alerts.* settings) drawn as red lines.

    Deploy the arm format with
    `az deployment group create -g RG -f FILE -p workbookSourceId=RESOURCE_ID`.
    """
    from cli.output import Console
    from kql import workbook
    from kql.queries import load_queries

    from kql.render import SCHEMAS

    check_choice("--format", fmt, workbook.FORMATS)
    check_choice("--schema", schema, SCHEMAS)
    settings = config(config_path)
    queries = list(load_queries().values())
    limits = {q.threshold.config_key: settings[q.threshold.config_key] for q in queries if q.threshold}
    typer.echo(workbook.render(fmt, queries, limits, schema, resource), nl=False)
    console = Console(quiet)
    for line in workbook.summary_lines(queries, limits):
        console.info(line)
