"""botctl serve: the webhook on uvicorn, inline or queued processing."""

from __future__ import annotations

import errno
import os
from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, check_choice, choices, config


def serve(host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8000,
          workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes.")] = 1,
          mode: Annotated[Optional[str], typer.Option(
              "--mode", **choices(("inline", "queued")), help="inline: process before answering; queued: answer, then process. "
                             "(default: setting mode, inline)", show_default=False)] = None,
          db: DbOption = None,
          demo: Annotated[bool, typer.Option("--demo", help="Migrate and seed demo Equipos first.")] = False,
          whatsapp_url: Annotated[Optional[str], typer.Option(
              "--whatsapp-url", metavar="URL", help="Graph API base URL the replies are sent to (setting "
              "whatsapp.base_url). A loopback URL is a local stand-in such as `botctl chat`'s "
              "(http://127.0.0.1:8001) and needs no token. (default: https://graph.facebook.com with "
              "BOTCTL_WHATSAPP_TOKEN, else replies are only stored)", show_default=False)] = None,
          config_path: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Serve the WhatsApp webhook on uvicorn (POST/GET /webhook, GET /healthz)."""
    from bot_core.secrets import LOCAL_DEV_SECRET, is_loopback, resolve_hash_key, resolve_secrets
    from bot_core.errors import ConfigError
    from bot_core.storage import database_from_config
    from bot_core.tls import outbound_tls
    from cli.output import Console

    console = Console(quiet)
    cfg = config(config_path, db=db, mode=mode, whatsapp__base_url=whatsapp_url)
    check_choice("--mode", cfg.get("mode"), ("inline", "queued"))
    if workers < 1 or not 0 < port < 65536:
        raise ConfigError("--workers must be >= 1 and --port within 1..65535")
    secret, _ = resolve_secrets(cfg, host)  # refuses a non-loopback host without secrets
    resolve_hash_key(cfg, is_loopback(host))  # ... and without the key of telefono_hash
    outbound_tls()  # ... and with an SSL_CERT_FILE/SSL_CERT_DIR that cannot be read
    _check_bindable(host, port)
    if secret == LOCAL_DEV_SECRET:
        console.warn("BOTCTL_APP_SECRET is not set: using the local development secret (loopback only)")
    database = database_from_config(cfg)
    if demo:
        from bot_core.demo import seed_demo_equipment
        from migrations.runner import MigrationRunner

        MigrationRunner(database, progress=console.info).up()
        console.info(f"demo: {seed_demo_equipment(database)} Equipos added")
    # Workers are separate processes: they read the resolved settings from the environment.
    os.environ["BOTCTL_DB"] = cfg.get("db")
    os.environ["BOTCTL_MODE"] = cfg.get("mode")
    os.environ["BOTCTL_WHATSAPP_BASE_URL"] = cfg.get("whatsapp.base_url")
    os.environ["BOTCTL_SERVE_HOST"] = host
    if config_path:
        os.environ["BOTCTL_CONFIG"] = config_path
    import uvicorn

    console.info(f"serving {database.url} on http://{host}:{port}/webhook "
                 f"({cfg.get('mode')}, {workers} worker(s)); telemetry -> {cfg.get('telemetry_file')}")
    # Connection hygiene (docs/security.md): idle keep-alive closed after 5 s, request headers
    # within header_timeout_seconds and max_header_bytes (cli/serve_protocol.py), at most
    # max_connections per worker (503 past it), the body within body_timeout_seconds (the app).
    uvicorn.run("cli.serve_app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                http="cli.serve_protocol:GuardedProtocol", timeout_keep_alive=5,
                limit_concurrency=cfg.get("max_connections"),
                h11_max_incomplete_event_size=cfg.get("max_header_bytes"), server_header=False)


def _check_bindable(host: str, port: int) -> None:
    """One line before anything is served when the address is taken (uvicorn would print its
    own error after our "serving" line and exit 3)."""
    import socket

    from bot_core.errors import ConfigError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            hint = " (another botctl serve? pick another --port)" if exc.errno == errno.EADDRINUSE else ""
            raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror}{hint}") from None
