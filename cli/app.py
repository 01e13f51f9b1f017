"""The ``botctl`` Typer application.

Sub-command modules import only typer and the standard library at import time;
heavy modules (pyodbc, azure, duckdb, sqlglot, uvicorn) are imported inside the
command that needs them, so ``botctl --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc

from bot_core.errors import BotctlError
from cli import (alerts_cmd, chat_cmd, checklist_cmd, dashboard_cmd, loadtest_cmd, metrics_cmd, migrate_cmd,
                 serve_cmd, smoke_cmd)

app = typer.Typer(
    name="botctl",
    help="Run, migrate, observe and release-gate the WhatsApp field-report bot.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"botctl {version('botctl')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("botctl (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(show_version: Annotated[bool, typer.Option(
        "--version", "-V", help="Print botctl's version and exit.", callback=_version, is_eager=True)] = False) -> None:
    """Run, migrate, observe and release-gate the WhatsApp field-report bot."""

app.add_typer(migrate_cmd.app, name="migrate")
app.command("serve")(serve_cmd.serve)
app.command("chat")(chat_cmd.chat)
app.command("loadtest")(loadtest_cmd.loadtest)
app.command(name="metrics")(metrics_cmd.metrics)
app.add_typer(alerts_cmd.app, name="alerts")
app.add_typer(dashboard_cmd.app, name="dashboard")
app.command("checklist")(checklist_cmd.checklist)
app.command("smoke")(smoke_cmd.smoke)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one readable line and exit code 2 for any usage/config error."""
    command = typer.main.get_command(app)
    _cheap_help_flags(command)
    try:
        code = command.main(args=argv, prog_name="botctl", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        # click 8.2+: a group called with no args prints its help and signals via this error
        print(exc.ctx.get_help(), file=sys.stderr)
        code = 2
    except click_exc.UsageError as exc:
        hint = f" (see 'botctl {exc.ctx.command_path.partition(' ')[2]} --help')".replace("  ", " ") if exc.ctx else ""
        print(f"botctl: error: {exc.format_message()}{hint}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, getattr(click_exc, "Abort", KeyboardInterrupt)):
        print("botctl: aborted", file=sys.stderr)
        code = 130
    except click_exc.ClickException as exc:
        print(f"botctl: error: {exc.format_message()}", file=sys.stderr)
        code = exc.exit_code
    except BotctlError as exc:
        print(f"botctl: error: {exc}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        code = 0
    except ImportError as exc:  # an optional package or system library a command needs is missing
        from bot_core.optional import install_hint

        hint = install_hint(exc)
        if hint is None:
            raise
        print(f"botctl: error: {hint}", file=sys.stderr)
        code = 2
    if not isinstance(code, int):
        code = 0
    if argv is None:
        sys.exit(code)
    return code


def _cheap_help_flags(command) -> None:
    """Give every command's --help flag a boolean default.

    Typer coerces a parameter whose value is not already a bool through pydantic,
    and an unset --help is None: so every sub-command run imported pydantic
    (~50 ms) just to learn that a parent group's --help was not given.
    """
    create = command.get_help_option

    def get_help_option(ctx):
        option = create(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _cheap_help_flags(sub)


if __name__ == "__main__":
    main()
