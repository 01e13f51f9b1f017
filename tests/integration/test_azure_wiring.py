"""The Azure seams we can exercise here: the Functions ASGI adapter and the OpenTelemetry log path."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from bot_core.app import BotSettings, create_app
from bot_core.storage import open_database
from bot_core.telemetry import LOGGER_NAME, Telemetry
from bot_core.webhook import meta
from migrations.runner import MigrationRunner

func = pytest.importorskip("azure.functions", reason="azure-functions (the azure extra) is not installed")
SECRET = "functions-secret"


def test_functions_adapter_verifies_and_processes_a_signed_webhook(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'f.db'}")
    MigrationRunner(db).up()
    app = create_app(db, BotSettings(app_secret=SECRET, verify_token="tok"), Telemetry(b"k"))
    middleware = func.AsgiMiddleware(app)

    async def scenario():
        body, headers = meta.signed_body(meta.envelope([meta.text_message("5215550001234", "hola",
                                                                            wamid="wamid.FUNC1")]), SECRET)
        ok = await middleware.handle_async(func.HttpRequest("POST", "http://localhost/webhook",
                                                            headers=headers, body=body))
        forged = await middleware.handle_async(func.HttpRequest(
            "POST", "http://localhost/webhook", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
            body=body.replace(b"hola", b"adios")))
        # The adapter builds the ASGI query string from the URL, as the Functions host sends it.
        verify = await middleware.handle_async(func.HttpRequest(
            "GET", "http://localhost/webhook?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42", body=b""))
        return ok, forged, verify

    ok, forged, verify = asyncio.run(scenario())
    assert ok.status_code == 200 and json.loads(ok.get_body())["received"] == 1
    assert forged.status_code == 403
    assert (verify.status_code, verify.get_body()) == (200, b"42")
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado FROM MensajesProcesados WHERE MensajeId = 'wamid.FUNC1'")
        assert cur.fetchone()[0] == "PROCESADO"
        cur.execute("SELECT COUNT(*) FROM MensajesSalientes WHERE MensajeOrigenId = 'wamid.FUNC1'")
        assert cur.fetchone()[0] >= 1
        cur.execute("SELECT COUNT(*) FROM MensajesProcesados")
        assert cur.fetchone()[0] == 1  # the forged delivery wrote nothing


def test_opentelemetry_log_records_carry_the_dimensions_the_queries_read():
    sdk_logs = pytest.importorskip("opentelemetry.sdk._logs", reason="opentelemetry-sdk is not installed")
    from opentelemetry.sdk._logs import export as log_export

    InMemoryLogExporter = getattr(log_export, "InMemoryLogRecordExporter", None) or log_export.InMemoryLogExporter
    SimpleLogRecordProcessor = log_export.SimpleLogRecordProcessor

    exporter = InMemoryLogExporter()
    provider = sdk_logs.LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = sdk_logs.LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger = logging.getLogger(LOGGER_NAME + ".otel-test")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        telemetry = Telemetry(b"key", logger)
        telemetry.emit("concurrency.retry", telefono="5215550001234", operation="commit_transition",
                       attempt=1, max_attempts=3, delay_ms=52)
        telemetry.emit("ai.timeout", operation="extractStructuredData", timeout_ms=4000, provider="openai")
        telemetry.emit("dedup.duplicate", telefono="5215550001234", message_id="wamid.X", retry_count=3)
        telemetry.emit("breaker.transition", breaker="ai", from_state="HALF_OPEN", to_state="OPEN", failures=1)
        telemetry.request(name="POST /webhook", url="/webhook", result_code=200, duration_ms=12.5,
                          operation_id="op1", messages=1)
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
    records = [getattr(item, "log_record", item) for item in exporter.get_finished_logs()]
    by_event = {r.attributes["event_name"]: r for r in records}
    retry = by_event["concurrency.retry"]
    assert str(retry.body) == "[ConcurrencyRetry] Intento 1/3 falló, reintentando en 52ms"
    assert retry.attributes["operation"] == "commit_transition" and retry.attributes["delay_ms"] == 52
    assert len(retry.attributes["telefono_hash"]) == 32  # 128 bits
    assert "5215550001234" not in json.dumps({k: str(v) for r in records for k, v in r.attributes.items()})
    assert by_event["ai.timeout"].attributes["operation"] == "extractStructuredData"
    assert str(by_event["ai.timeout"].body) == "[Timeout] extractStructuredData excedió 4000ms, usando fallback"
    assert by_event["dedup.duplicate"].attributes["retry_count"] == 3
    assert str(by_event["breaker.transition"].body) == "[CircuitBreaker] State changed: HALF_OPEN -> OPEN"
    assert by_event["webhook.request"].attributes["resultCode"] == 200
    # No handled error is logged with exc_info: they stay in `traces`, not `exceptions`.
    assert all("exception.type" not in r.attributes for r in records)


def test_app_insights_is_configured_only_with_a_connection_string():
    from bot_core.appinsights import configure_app_insights

    assert configure_app_insights(env={}) is False
