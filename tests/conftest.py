"""Shared fixtures: real SQLite files and real PostgreSQL databases (one per test)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bot_core.storage import Database, open_database

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BOTCTL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BOTCTL_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BOTCTL_TEST_PG_USER", "postgres")


def _pg_unavailable_reason() -> str | None:
    try:
        import pyodbc
    except ImportError:
        return "pyodbc is not installed"
    if not any("PostgreSQL" in d for d in pyodbc.drivers()):
        return "psqlODBC (odbc-postgresql) is not installed"
    try:
        db = open_database(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres")
        db.connect().close()
    except Exception as exc:  # noqa: BLE001 - the reason is shown in the skip
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable ({exc})"
    return None


PG_REASON = _pg_unavailable_reason()
requires_pg = pytest.mark.skipif(PG_REASON is not None, reason=PG_REASON or "")


def _admin(sql: str) -> None:
    import pyodbc

    conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER={PG_HOST};PORT={PG_PORT};"
                          f"DATABASE=postgres;UID={PG_USER};", autocommit=True)
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    if PG_REASON:
        pytest.skip(PG_REASON)
    name = f"botctl_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'botctl.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'botctl.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url) -> Database:
    return open_database(db_url)


def botctl(*args: str, env: dict | None = None, cwd: str | Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "cli.app", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture
def copy_migrations(tmp_path):
    """A writable copy of one dialect's migrations folder."""
    def _copy(dialect: str) -> Path:
        target = tmp_path / f"migrations-{dialect}"
        shutil.copytree(ROOT / "migrations" / dialect, target)
        return target
    return _copy


class EventCapture(logging.Handler):
    """Collects the log records a Telemetry emits, to assert on events."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def events(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "custom_dimensions", {}).get("event_name") == name]


def captured_telemetry(key: bytes = b"k"):
    """A Telemetry on a private logger, and the capture that sees its records."""
    from bot_core.telemetry import Telemetry

    capture = EventCapture()
    logger = logging.getLogger(f"tests.telemetry.{id(capture)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(capture)
    return Telemetry(key, logger), capture


@pytest.fixture
def recorded_mssql(tmp_path):
    """The ``mssql`` dialect against the SQL Server stand-in of tests/support/tsql_recorder.py (SQL
    Server cannot run here): each statement is recorded and carried out on a migrated SQLite
    file, ``backing``, where the test reads back what SQL Server would hold."""
    pytest.importorskip("sqlglot", reason="sqlglot (the T-SQL parser) is not installed")
    from migrations.runner import MigrationRunner
    from tests.support.tsql_recorder import RecordingDatabase

    backing = open_database(f"sqlite:///{tmp_path / 'backing.db'}")
    MigrationRunner(backing).up()
    return RecordingDatabase.over(backing.url.database), backing
