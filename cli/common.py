"""Options and helpers shared by the thin commands."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from bot_core.errors import ConfigError
from cli.output import FORMATS

DbOption = Annotated[Optional[str], typer.Option(
    "--db", help="Database URL (sqlite:///f.db, postgresql://user@host:port/db, mssql://server/db?auth=token). "
                 "Default: BOTCTL_DB, then botctl.yaml, then sqlite:///botctl.db.", show_default=False)]
ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", help="Config file (default ./botctl.yaml if present).", show_default=False)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")]


def choices(values: tuple[str, ...]) -> dict[str, Any]:
    """typer.Option arguments for a closed set of values: listed in the help, completed by the shell.

    The value stays a plain str (no pydantic round trip); the command checks it with
    :func:`check_choice`, which says in one line what is allowed.
    """
    return {"metavar": "|".join(values),
            "autocompletion": lambda incomplete: [v for v in values if v.startswith(incomplete)]}


OUTPUTS = FORMATS
OutputOption = Annotated[str, typer.Option("--output", "-o", help="Result format on stdout.", **choices(OUTPUTS))]


def config(config_path: str | None = None, **flags: Any):
    from bot_core.config import load_config

    return load_config(config_path, flags=flags)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value
