"""botctl chat: talk to the bot as a WhatsApp user would."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, config

DEFAULT_LISTEN = "127.0.0.1:8001"


def chat(url: Annotated[Optional[str], typer.Option(
             "--url", help="Webhook URL of a running `botctl serve` (started with --whatsapp-url "
                           "http://LISTEN); without it a server is started in-process on --db.",
             show_default=False)] = None,
         phone: Annotated[str, typer.Option("--phone", help="The WhatsApp number you are.")] = "5215550000001",
         user_id: Annotated[Optional[str], typer.Option(
             "--user-id", metavar="BSUID", help="Be a user without a phone number: only this business-scoped "
                                                "user ID (e.g. US.13491208655302741918) is sent, as Meta does "
                                                "for users with a username.", show_default=False)] = None,
         script: Annotated[Optional[str], typer.Option("--script", help="Read the lines to send from "
                                                       "this file instead of the keyboard.",
                                                       show_default=False)] = None,
         listen: Annotated[Optional[str], typer.Option(
             "--listen", metavar="HOST:PORT", help="Where the bot's replies arrive: a local stand-in for the "
                                                   f"Graph API. (default with --url: {DEFAULT_LISTEN}, "
                                                   "else a free port)", show_default=False)] = None,
         db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Talk to the bot as a WhatsApp user: send messages (a number picks an offered option), print its replies.

    /tap TITLE taps a button or list row the bot offered, an old menu's too; /text WORDS sends WORDS as
    typed text (/text 1 types a 1 instead of tapping option 1).

    Deliveries are signed like Meta's; the replies come back through the Graph API, so a chat never
    reads the server's database.
    """
    from bot_core.chat import ChatError, ChatSession, LocalGraph, UnknownOption, format_reply
    from bot_core.errors import ConfigError
    from bot_core.secrets import resolve_secrets
    from cli.output import Console

    console = Console(quiet)
    if url is not None and db is not None:
        raise ConfigError("--db is not used with --url: the replies come from the server itself "
                          "(through --listen), not from its database")
    cfg = config(config_path, db=db)
    if not phone.isdigit() or not 8 <= len(phone) <= 15:
        raise ConfigError("--phone must be 8 to 15 digits, as WhatsApp sends it")
    if user_id is not None:
        from bot_core.identity import is_bsuid

        if not is_bsuid(user_id):
            raise ConfigError("--user-id must be a business-scoped user ID: 2 capital letters, a dot, "
                              "an optional ENT. and up to 128 letters or digits")
    host, port = _address(listen or (DEFAULT_LISTEN if url else "127.0.0.1:0"))
    secret, _ = resolve_secrets(cfg, "127.0.0.1")
    lines = _script_lines(script) if script else None
    graph = LocalGraph(host, port).start()
    server = None
    try:
        if url is None:
            from bot_core.storage import database_from_config
            from cli.local_server import LocalServer

            database = database_from_config(cfg, must_exist=True)
            database.connect().close()  # a missing or unreachable database: one line, before starting
            server = LocalServer(cfg, graph.url)
            url = server.start()
            console.info(f"started a local bot at {url} on {database.url}")
        else:
            console.info(f"replies arrive at {graph.url} (the server must run with --whatsapp-url {graph.url})")
        if lines is None:
            console.info("type a message (a number picks an option, /tap TITLE taps one, /text 1 types it; "
                         "Ctrl-D to quit)")
        session = ChatSession(url, secret, graph, user_id or phone)  # who the deliveries come from
        try:
            for line in lines if lines is not None else _prompt():
                if lines is not None:
                    typer.echo(f"tú: {line}")
                try:
                    replies = session.say(line)
                except UnknownOption as exc:
                    console.error(str(exc))
                    if lines is not None:  # a script that taps what was never offered is wrong
                        raise typer.Exit(2)
                    continue  # at the keyboard: a typo, nothing was sent; type again
                except ChatError as exc:
                    console.error(str(exc))
                    raise typer.Exit(2)
                for reply in replies:
                    typer.echo(format_reply(reply))
        finally:
            session.close()
    finally:
        if server is not None:
            server.stop()
        graph.stop()


def _address(text: str) -> tuple[str, int]:
    from bot_core.errors import ConfigError

    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}), not {text!r}")
    return host, int(port)


def _script_lines(script: str) -> list[str]:
    from bot_core.errors import ConfigError

    try:
        with open(script, encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read --script {script}: {exc.strerror}") from None


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
