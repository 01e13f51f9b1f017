"""Application Insights wiring: every telemetry event into ``traces``, webhook calls into ``requests``.

Only active when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.
azure-monitor-opentelemetry collects the ``botctl.events`` logger at INFO; the
attributes each record carries (``event_name``, ``telefono_hash``, ...) become
``customDimensions``. Handled errors such as ConcurrencyError are logged without
``exc_info`` (see Telemetry.emit), so they stay in ``traces`` instead of moving
to ``exceptions`` where the stored queries would not find them. The ASGI app is
wrapped in OpenTelemetry's ASGI middleware so each webhook call is a server span,
which App Insights stores in ``requests``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from bot_core.telemetry import LOGGER_NAME

CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"


def configure_app_insights(env: Mapping[str, str] | None = None, **options: Any) -> bool:
    """Configure azure-monitor-opentelemetry when the connection string is set; returns whether it did."""
    env = os.environ if env is None else env
    connection_string = env.get(CONNECTION_STRING_ENV)
    if not connection_string:
        return False
    from bot_core.optional import require

    monitor = require("azure.monitor.opentelemetry", CONNECTION_STRING_ENV)
    monitor.configure_azure_monitor(connection_string=connection_string, logger_name=LOGGER_NAME,
                                    enable_live_metrics=False, **options)
    logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
    return True


def instrument_asgi(app: Any) -> Any:
    """The app wrapped so each request becomes a server span (App Insights ``requests``)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, excluded_urls="healthz")
