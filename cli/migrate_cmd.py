"""botctl migrate: status | up | down | plan | validate | baseline | repair | rehearse.

Each command parses options, calls the runner in ``migrations`` and renders.
Results go to stdout; progress and the summary to stderr.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Optional

import typer

from cli.common import OUTPUTS, ConfigOption, DbOption, OutputOption, QuietOption, check_choice, choices, config

app = typer.Typer(help="Apply, roll back and inspect schema migrations.", no_args_is_help=True)


def _runner(db: str | None, config_path: str | None, quiet: bool, read_only: bool = False):
    """The runner on the configured database; a read-only command never creates one."""
    from bot_core.storage import database_from_config
    from cli.output import Console
    from migrations.runner import MigrationRunner

    console = Console(quiet)
    cfg = config(config_path, db=db)
    database = database_from_config(cfg, busy_timeout_ms=60_000, must_exist=read_only)
    return MigrationRunner(database, progress=console.info), console


@app.command()
def status(db: DbOption = None, config_path: ConfigOption = None, output: OutputOption = "table",
           quiet: QuietOption = False) -> None:
    """Show each migration's state (applied, pending, failed, changed); exit 1 when one is not applied."""
    from cli.output import render

    check_choice("--output", output, OUTPUTS)
    runner, console = _runner(db, config_path, quiet, read_only=True)
    rows = [asdict(s) for s in runner.status()]
    columns = ["version", "description", "state", "applied_at", "execution_ms"]
    render(rows, output, columns=columns + (["repaired_at"] if any(r["repaired_at"] for r in rows) else []))
    pending = [r for r in rows if r["state"] != "applied"]
    console.info(f"{runner.db.url}: {len(rows) - len(pending)} applied, {len(pending)} not applied")
    raise typer.Exit(1 if pending else 0)


@app.command()
def up(to: Annotated[Optional[str], typer.Option("--to", help="Stop at this version (000, 2, …).")] = None,
       db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Apply pending migrations in order, each in its own transaction."""
    _apply(lambda r: r.up(r.resolve_target(to)), db, config_path, quiet)


@app.command()
def down(to: Annotated[Optional[str], typer.Option("--to", help="Version to go back to (required).")] = None,
         db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Roll back applied migrations above --to, newest first."""
    from bot_core.errors import ConfigError

    if to is None:
        raise ConfigError("down needs an explicit target: botctl migrate down --to VERSION")
    _apply(lambda r: r.down(r.resolve_target(to)), db, config_path, quiet)


def _apply(action, db, config_path, quiet) -> None:
    from cli.output import render
    from migrations.runner import MigrationBlocked, MigrationError

    runner, console = _runner(db, config_path, quiet)
    try:
        done = action(runner)
    except (MigrationError, MigrationBlocked) as exc:
        console.error(str(exc))
        raise typer.Exit(1)
    if done:
        render([asdict(a) for a in done], "table")
        console.info(f"{len(done)} migration(s) {done[0].direction} on {runner.db.url}")
    else:
        console.info(f"nothing to do on {runner.db.url}")


@app.command()
def plan(dialect: Annotated[Optional[str], typer.Option(
             "--dialect", **choices(("sqlite", "postgresql", "mssql")), help="SQL dialect of the script. (default: the configured database's)",
             show_default=False)] = None,
         direction: Annotated[str, typer.Option("--direction", help="Apply or roll back.",
                                                **choices(("up", "down")))] = "up",
         start: Annotated[Optional[str], typer.Option("--from", help="First version (up) / highest (down).")] = None,
         to: Annotated[Optional[str], typer.Option("--to", help="Last version (up) / version to go back to (down).")] = None,
         config_path: ConfigOption = None) -> None:
    """Print the exact script a run would execute (GO-separated for mssql). Does not connect."""
    from bot_core.storage import DIALECTS, parse_db_url
    from migrations.plan import build_plan
    from migrations.scripts import parse_version

    if dialect is None:
        dialect = parse_db_url(config(config_path).get("db")).dialect
    check_choice("--dialect", dialect, DIALECTS)
    check_choice("--direction", direction, ("up", "down"))
    typer.echo(build_plan(dialect, direction, parse_version(start) if start is not None else None,
                          parse_version(to) if to is not None else None), nl=False)


@app.command()
def validate(db: DbOption = None, config_path: ConfigOption = None, output: OutputOption = "table",
             quiet: QuietOption = False) -> None:
    """Report checksum drift, missing files, out-of-order and failed migrations; exit 1 when there is one."""
    from cli.output import render

    check_choice("--output", output, OUTPUTS)
    runner, console = _runner(db, config_path, quiet, read_only=True)
    problems = [asdict(p) for p in runner.validate()]
    if problems or output != "table":
        render(problems, output, columns=["kind", "version", "message"])
    console.info(f"{runner.db.url}: {len(problems)} problem(s)")
    raise typer.Exit(1 if problems else 0)


@app.command()
def baseline(db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Adopt an existing pre-phase-1 database as version 000 (its data is kept)."""
    _apply(lambda r: [r.baseline()], db, config_path, quiet)


@app.command()
def repair(db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Clear failed migration rows and realign checksums (append-only: adds repair rows)."""
    runner, console = _runner(db, config_path, quiet, read_only=True)
    actions = runner.repair()
    for action in actions:
        typer.echo(action)
    console.info(f"{len(actions)} repair action(s) on {runner.db.url}")


@app.command()
def rehearse(db: DbOption = None, evidence: Annotated[Optional[str], typer.Option(
                 "--evidence", help="Write the JSON evidence to this file.")] = None,
             config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Rehearse a rollback on an empty scratch database: up, down, up, comparing schemas at each step."""
    from bot_core.storage import database_from_config
    from cli.output import Console, to_json
    from migrations.rehearse import rehearse as run_rehearsal

    console = Console(quiet)
    result = run_rehearsal(database_from_config(config(config_path, db=db)), progress=console.info)
    text = to_json(result)
    if evidence:
        with open(evidence, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    typer.echo(text)
    console.info("rollback rehearsal: " + ("schemas identical" if result["identical"] else "SCHEMAS DIFFER"))
    raise typer.Exit(0 if result["identical"] else 1)
