"""botctl checklist: evaluate the pre-production checklist (ops.checklist) and render it."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, check_choice, choices


CHECKLIST_OUTPUTS = ("table", "json", "junit", "md", "html")
DIALECTS = ("sqlite", "postgresql", "mssql")


def _Path(flag: str, what: str):
    return typer.Option(flag, help=f"{what} (overrides checklist.yaml).", show_default=False)


def checklist(
    file: Annotated[Optional[str], typer.Option("--file", "-f", help="Checklist file (default: checklist.yaml "
                                                "here or in the nearest parent up to the repository root).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Result format on stdout.",
                                        **choices(CHECKLIST_OUTPUTS))] = "table",
    junit: Annotated[Optional[str], _Path("--junit", "JUnit XML of the test run")] = None,
    coverage: Annotated[Optional[str], _Path("--coverage", "Cobertura coverage XML")] = None,
    loadtest_summary: Annotated[Optional[str], _Path("--loadtest-summary", "botctl loadtest --summary JSON")] = None,
    alerts: Annotated[Optional[str], _Path("--alerts", "ARM template from botctl alerts export")] = None,
    rehearsal: Annotated[Optional[str], _Path("--rehearsal", "botctl migrate rehearse --evidence JSON")] = None,
    rehearsal_dialect: Annotated[Optional[str], typer.Option(
        "--rehearsal-dialect", help="Accept a rollback rehearsal on this dialect instead of the target "
        "checklist.yaml names (CI without SQL Server); the verdict says so.", **choices(DIALECTS))] = None,
    md_out: Annotated[Optional[str], typer.Option("--md-out", help="Also write the Markdown summary here.")] = None,
    automated_only: Annotated[bool, typer.Option("--automated-only", help="Report attestations as skipped "
                                                 "(CI: evaluate what a machine can prove).")] = False,
    db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False,
) -> None:
    """Evaluate the pre-production checklist (checklist.yaml) and say whether the release is ready.

    Exit 0 ready, 1 a blocker fails (fail or stale), 2 could not evaluate (bad checklist, blocker in error).
    Markdown is also appended to $GITHUB_STEP_SUMMARY when it is set.
    """
    import os

    from cli.output import Console, render
    from ops import checklist as cl
    from ops.checklist_render import render_html, render_junit, render_markdown, write_markdown

    check_choice("--output", output, CHECKLIST_OUTPUTS)
    if rehearsal_dialect is not None:
        check_choice("--rehearsal-dialect", rehearsal_dialect, DIALECTS)
    spec = cl.load_checklist(file or cl.find_checklist())
    context = cl.Context(db=db, junit=junit, coverage=coverage, loadtest_summary=loadtest_summary,
                         alerts=alerts, rehearsal=rehearsal, rehearsal_dialect=rehearsal_dialect,
                         config_path=config_path,
                         automated_only=automated_only)
    results = cl.evaluate(spec, context)
    doc = cl.report(spec, results)
    markdown = render_markdown(results)
    if output in ("table", "json"):
        render(doc if output == "json" else doc["items"], output, columns=["id", "severity", "status", "detail"])
    elif output == "html":
        typer.echo(render_html(results, source=str(spec.path), evaluated_at=doc["evaluated_at"]), nl=False)
    else:
        typer.echo(render_junit(results) if output == "junit" else markdown, nl=False)
    write_markdown(markdown, md_out, os.environ.get("GITHUB_STEP_SUMMARY"))
    console = Console(quiet)
    for r in results:
        if r.waiver and not r.waiver["active"]:
            console.warn(f"{r.id}: the waiver by {r.waiver['approver']} has expired and is ignored")
    counts = ", ".join(f"{n} {s}" for s, n in doc["counts"].items() if n)
    console.info(f"checklist {spec.path}: {doc['headline']} ({counts})")
    raise typer.Exit(doc["exit_code"])
