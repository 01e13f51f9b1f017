"""The uvicorn factory behind `botctl serve`: app from BOTCTL_* env, /healthz knows migrations."""

from __future__ import annotations

import os
from typing import Callable

from starlette.applications import Starlette

from bot_core.asgi import create_app_from_config
from bot_core.config import Config, load_config
from bot_core.errors import BotctlError
from bot_core.storage import database_from_config


def pending_migrations_probe(config: Config) -> Callable[[], list[str]]:
    from migrations.runner import MigrationRunner

    runner = MigrationRunner(database_from_config(config))

    def pending() -> list[str]:
        return [s.version for s in runner.status() if s.state != "applied"]

    return pending


def create_app_from_env() -> Starlette:
    from bot_core.appinsights import configure_app_insights, instrument_asgi

    try:
        config = load_config()
        # BOTCTL_SERVE_HOST is set by `botctl serve` (which checked it): a literal loopback
        # address there is the only way this factory runs with the development secret.
        app = create_app_from_config(config, os.environ.get("BOTCTL_SERVE_HOST"),
                                     pending_migrations_probe(config))
    except BotctlError as exc:  # under uvicorn: one line and exit, not a traceback
        raise SystemExit(f"botctl: {exc}") from None
    # With APPLICATIONINSIGHTS_CONNECTION_STRING set, events go to `traces`, calls to `requests`.
    return instrument_asgi(app) if configure_app_insights() else app
