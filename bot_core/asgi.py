"""Build the app from configuration: what `botctl serve` workers and Azure Functions call.

``create_app_from_config`` resolves secrets, telemetry and the database from a
:class:`bot_core.config.Config`. The pending-migrations probe is handed in by
the caller: bot_core does not import ``migrations``.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, Callable

from starlette.applications import Starlette

from bot_core.app import BotSettings, create_app
from bot_core.config import Config
from bot_core.errors import ConfigError
from bot_core.secrets import is_loopback, resolve_hash_key, resolve_secrets
from bot_core.storage import database_from_config
from bot_core.telemetry import LOGGER_NAME, JsonlSink, Telemetry
from bot_core.tls import outbound_tls

def build_telemetry(config: Config, local_dev: bool, sink_path: str | None = None) -> Telemetry:
    """Telemetry keyed by ``hash_key``: required (16+ characters) outside local development."""
    hash_key = resolve_hash_key(config, local_dev).encode()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    path = sink_path or config.get("telemetry_file")
    if path and not any(isinstance(h, JsonlSink) for h in logger.handlers):
        logger.addHandler(JsonlSink.to_file(path))
    return Telemetry(hash_key, logger)


LOCAL_GRAPH_TOKEN, LOCAL_GRAPH_NUMBER = "botctl-local-graph", "local"


def build_sender(config: Config, telemetry: Telemetry, verify: ssl.SSLContext | bool = True):
    """The Graph API sender when a token and phone number id are configured, else the local one.

    A ``whatsapp.base_url`` on loopback is a local stand-in (``botctl chat`` runs one): it needs
    neither a token nor a phone number id, as the local development secret needs no real one.
    """
    from urllib.parse import urlsplit

    from bot_core.graph_sender import GraphApiSender
    from bot_core.outbox import LocalSender
    from bot_core.secrets import is_loopback

    token, number = config.get("whatsapp_token"), config.get("whatsapp.phone_number_id")
    base_url = config.get("whatsapp.base_url")
    if not token and not number:
        if not is_loopback(urlsplit(base_url).hostname or "example.invalid"):
            return LocalSender()
        token, number = LOCAL_GRAPH_TOKEN, LOCAL_GRAPH_NUMBER
    if not (token and number):
        raise ConfigError("the Graph API sender needs both BOTCTL_WHATSAPP_TOKEN and whatsapp.phone_number_id")
    return GraphApiSender(base_url, config.get("whatsapp.api_version"), number, token, telemetry, verify=verify)


def settings_from_config(config: Config, app_secret: str, verify_token: str) -> BotSettings:
    mode = config.get("mode")
    if mode not in ("inline", "queued"):
        raise ConfigError(f"mode must be inline or queued, not {mode!r}")
    return BotSettings(app_secret=app_secret, verify_token=verify_token, mode=mode,
                       inline_deadline_s=config.get("inline_deadline_ms") / 1000,
                       lease_seconds=config.get("lease_seconds"),
                       sweep_interval_s=config.get("sweep_interval_seconds"),
                       outbox_poll_s=config.get("outbox_poll_seconds"),
                       round_budget_s=config.get("timer_budget_seconds"),
                       body_timeout_s=config.get("body_timeout_seconds"),
                       idle_minutes=config.get("session_idle_minutes"),
                       supervisors=frozenset(config.get("supervisors")),
                       smoke_phone=config.get("smoke.phone"))


def create_app_from_config(config: Config, host: str | None = None,
                           pending_migrations: Callable[[], list[str]] | None = None,
                           **overrides: Any) -> Starlette:
    from bot_core.ai_providers import build_intent_service

    secret, token = resolve_secrets(config, host)
    telemetry = build_telemetry(config, is_loopback(host))
    db = database_from_config(config)
    tls = outbound_tls()  # one trust store for every outbound client (see bot_core/tls.py)
    overrides.setdefault("intent", build_intent_service(config, telemetry, tls))
    overrides.setdefault("sender", build_sender(config, telemetry, tls))
    return create_app(db, settings_from_config(config, secret, token), telemetry,
                      pending_migrations=pending_migrations, **overrides)
