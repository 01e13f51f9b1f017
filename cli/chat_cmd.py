"""botctl chat: talk to the local bot as a WhatsApp user would."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, config


def chat(url: Annotated[Optional[str], typer.Option("--url", help="Webhook URL of a running serve; "
                                                     "without it a server is started in-process.")] = None,
         phone: Annotated[str, typer.Option("--phone", help="The WhatsApp number you are.")] = "5215550000001",
         script: Annotated[Optional[str], typer.Option("--script", help="Read the lines to send from "
                                                       "this file instead of the keyboard.")] = None,
         db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Send messages (or a number to pick an offered button) and print the bot's replies."""
    from bot_core.secrets import resolve_secrets
    from bot_core.chat import ChatSession, format_reply
    from bot_core.errors import ConfigError
    from bot_core.storage import database_from_config
    from cli.output import Console

    console = Console(quiet)
    cfg = config(config_path, db=db)
    if not phone.isdigit() or not 8 <= len(phone) <= 15:
        raise ConfigError("--phone must be 8 to 15 digits, as WhatsApp sends it")
    secret, _ = resolve_secrets(cfg, "127.0.0.1")
    database = database_from_config(cfg)
    if script:
        try:
            with open(script, encoding="utf-8") as fh:
                lines = [line.rstrip("\n") for line in fh if line.strip()]
        except OSError as exc:
            raise ConfigError(f"cannot read --script {script}: {exc.strerror}") from None
    else:
        console.info("type a message (a number picks an option; Ctrl-D to quit)")
        lines = None
    server = None
    if url is None:
        from cli.local_server import LocalServer

        server = LocalServer(cfg)
        url = server.start()
        console.info(f"started a local bot at {url} on {database.url}")
    session = ChatSession(url, secret, database, phone)
    try:
        for line in lines if lines is not None else _prompt():
            if lines is not None:
                typer.echo(f"tú: {line}")
            try:
                replies = session.say(line)
            except (RuntimeError, TimeoutError, OSError) as exc:
                console.error(str(exc))
                raise typer.Exit(1)
            for reply in replies:
                typer.echo(format_reply(reply))
    finally:
        session.close()
        if server is not None:
            server.stop()


def _prompt():
    while True:
        try:
            line = input("tú: ") if sys.stdin.isatty() else sys.stdin.readline()
        except EOFError:
            return
        if line == "" and not sys.stdin.isatty():
            return
        if line.strip():
            yield line
