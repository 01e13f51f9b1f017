"""/healthz tells a stranger `ok` or `unavailable` and a reason code, nothing else; it is cheap:
no write lock, no new connection per call (docs/security.md)."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from tests.conftest import PG_HOST, PG_PORT, PG_USER
from tests.e2e.servers import BotServer

pytestmark = [pytest.mark.e2e]


def test_an_unusable_database_is_a_reason_code_and_the_details_go_to_the_log(tmp_path):
    db = tmp_path / "secret-folder-name" / "empty.db"
    db.parent.mkdir()
    with BotServer(f"sqlite:///{db}", tmp_path) as server:  # no schema: every query fails
        response = httpx.get(server.url + "/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "reason": "database"}
        assert "secret-folder-name" not in response.text and "no such table" not in response.text
        for _ in range(5):
            httpx.get(server.url + "/healthz", timeout=10)
        server.stop()
    degraded = [json.loads(line)["customDimensions"] for line in server.telemetry.read_text().splitlines()]
    degraded = [d for d in degraded if d.get("operation") == "healthz.database"]
    assert len(degraded) == 1 and "no such table" in degraded[0]["error_type"]  # logged once, with details


def test_healthz_takes_no_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    MigrationRunner(open_database(url)).up()
    with BotServer(url, tmp_path) as server:
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process is writing, for as long as it likes
        try:
            for _ in range(3):
                response = httpx.get(server.url + "/healthz", timeout=30)
                assert response.status_code == 200 and response.json() == {"status": "ok"}
        finally:
            holder.execute("ROLLBACK")
            holder.close()


@pytest.mark.postgres
def test_healthz_opens_no_new_connection_per_call(pg_url, tmp_path):
    MigrationRunner(open_database(pg_url)).up()
    name = pg_url.rsplit("/", 1)[1]
    with BotServer(pg_url, tmp_path) as server:
        for _ in range(3):  # warm: the worker's connections exist
            httpx.get(server.url + "/healthz", timeout=10)
        before = _sessions(name)
        for _ in range(30):
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        opened = _sessions(name) - before
    assert opened <= 2, f"{opened} new database sessions for 30 /healthz calls"


def _sessions(database: str) -> int:
    import pyodbc  # noqa: F401  (the postgres marker guarantees the odbc extra)
    conn = open_database(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres").connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = ?", (database,))
        return int(cur.fetchone()[0])
    finally:
        conn.close()
