"""botctl alerts export: Azure Monitor log-alert templates from the stored queries' thresholds."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, QuietOption, check_choice, choices, config

app = typer.Typer(help="Azure Monitor alert rules from the stored KQL thresholds.", no_args_is_help=True)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="Template language.", **choices(("arm", "bicep")))] = "arm",
    config_path: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write Azure Monitor scheduled query rules (error rate, p95 latency, locking retries) to stdout.

    Thresholds come from the alerts.* settings; deploy with
    `az deployment group create -g RG -f FILE -p appInsightsResourceId=…`.
    """
    from cli.output import Console
    from kql import alerts
    from kql.queries import load_queries

    check_choice("--format", fmt, alerts.FORMATS)
    settings = config(config_path)
    queries = [q for q in load_queries().values() if q.threshold]
    limits = {q.threshold.config_key: settings[q.threshold.config_key] for q in queries}
    typer.echo(alerts.RENDERERS[fmt](queries, limits), nl=False)
    console = Console(quiet)
    for rule in alerts.rules(queries, limits):
        console.info(f"rule {rule['name']}: {rule['metricMeasureColumn']} > {rule['threshold']:g} "
                     f"over {rule['windowSize']}, every {rule['evaluationFrequency']}")
