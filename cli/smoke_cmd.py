"""botctl smoke: a few signed deliveries from the test identity after a deploy, checked end to end."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, check_choice, choices, config

SMOKE_OUTPUTS = ("text", "json")


def smoke(
    url: Annotated[str, typer.Option("--url", help="Webhook URL, e.g. https://<app>.azurewebsites.net/webhook")],
    count: Annotated[int, typer.Option("--count", help="Messages to send (1..100).")] = 10,
    phone: Annotated[Optional[str], typer.Option(
        "--phone", help="The test identity (default: smoke.phone; the server must know the same number).",
        show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the replies (with --db).")
                       ] = 30.0,
    output: Annotated[str, typer.Option("--output", "-o", **choices(SMOKE_OUTPUTS),
                                        help="text: a summary on stderr; json: the result on stdout.")] = "text",
    db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False,
) -> None:
    """Send a few signed text messages from the smoke identity and check each is acknowledged.

    --count messages; with --db also that each was recorded once, processed and answered.

    The server answers the smoke identity through its sender as usual, files no report for it and
    marks its telemetry synthetic. Exit 0 all good, 1 a check failed, 2 bad usage or no server.
    """
    from urllib.parse import urlparse

    from bot_core.errors import ConfigError
    from bot_core.secrets import resolve_secrets
    from cli.output import Console, to_json
    from ops.loadtest.runner import check_reachable
    from ops.smoke import run_smoke

    console = Console(quiet)
    check_choice("--output", output, SMOKE_OUTPUTS)
    if not 1 <= count <= 100 or timeout <= 0:
        raise ConfigError("--count must be within 1..100 and --timeout > 0")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--url must be an http(s) URL of the webhook, not {url!r}")
    cfg = config(config_path, db=db)
    phone = phone or cfg.get("smoke.phone")
    if not phone or not phone.isdigit():
        raise ConfigError("the smoke identity is a phone number in digits: --phone or BOTCTL_SMOKE_PHONE "
                          "(the same number the server has as smoke.phone)")
    secret, _ = resolve_secrets(cfg, parsed.hostname)  # a remote server needs the real app secret
    database = None
    if db is not None:
        from bot_core.storage import database_from_config

        database = database_from_config(cfg, must_exist=True)
    check_reachable(url, min(timeout, 10.0))
    result = run_smoke(url, secret, phone, count, database, timeout)
    summary = result.summary()
    if output == "json":
        typer.echo(to_json(summary))
    line = f"smoke {url}: {summary['acknowledged']}/{summary['sent']} acknowledged"
    if result.database_checked:
        line += (f", {summary['recorded_once']} recorded once, {summary['processed']} processed, "
                 f"{summary['answered']} answered")
    console.info(line + (" — ok" if result.ok else " — FAILED"))
    for failure in summary["failures"][:5]:
        console.warn(f"  {failure['message_id']}: HTTP {failure['http_status']}, recorded {failure['recorded']}, "
                     f"processed {failure['processed']}, answered {failure['answered']}")
    raise typer.Exit(0 if result.ok else 1)
