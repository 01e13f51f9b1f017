"""`--mode queued`: ingest answers at once, workers claim the inbox rows and process them."""

from __future__ import annotations

import asyncio

import pytest

from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.e2e.dbcheck import scalar, wait_all_processed
from tests.e2e.test_exactly_once import deliver_all

pytestmark = [pytest.mark.e2e]


def test_queued_mode_acknowledges_then_processes_every_message_once(db_url, serve_factory):
    MigrationRunner(open_database(db_url)).up()
    server = serve_factory(db_url, workers=2 if db_url.startswith("postgresql") else 1, mode="queued")
    payloads = [meta.envelope([meta.text_message(f"5215558{i:06d}", "hola", wamid=f"wamid.Q{i}")])
                for i in range(60)]
    statuses = asyncio.run(deliver_all(server.url, payloads, copies=2))
    assert set(statuses) == {200}
    wait_all_processed(db_url, 60, timeout=30)
    assert scalar(db_url, "SELECT COUNT(*) FROM HistorialSesiones") == 60
    assert scalar(db_url, "SELECT SUM(Reintentos) FROM MensajesProcesados") == 60
