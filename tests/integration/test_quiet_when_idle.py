"""serve's loops: woken by commits in their process, one look-out statement when idle.

Statements are seen through sqlite3's trace callback on every connection the bot opens
(the test wraps ``sqlite3.connect`` from its side; the bot is unchanged).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading

import pytest

from bot_core.app import Bot, BotSettings
from bot_core.pending_work import _NEXT_DUE
from bot_core.sqltime import to_db, utcnow
from bot_core.storage import open_database
from bot_core.telemetry import Telemetry
from bot_core.webhook import meta
from bot_core.webhook.payload import decode_webhook
from migrations.runner import MigrationRunner


class Trace:
    def __init__(self):
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def add(self, sql: str) -> None:
        with self.lock:
            self.statements.append(" ".join(sql.split()))

    def mark(self) -> int:
        with self.lock:
            return len(self.statements)

    def since(self, mark: int) -> list[str]:
        with self.lock:
            return self.statements[mark:]


@pytest.fixture
def traced(monkeypatch):
    trace = Trace()
    connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(trace.add)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return trace


def migrated(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'idle.db'}")
    MigrationRunner(db).up()
    return db


def outbox_states(db) -> list[str]:
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado FROM MensajesSalientes ORDER BY SalienteId")
        return [r[0] for r in cur.fetchall()]


async def wait_for(predicate, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def test_an_idle_bot_runs_only_the_look_out_statement(tmp_path, traced):
    db = migrated(tmp_path)
    bot = Bot(db, BotSettings(app_secret="s", verify_token="t", lease_seconds=0.3), Telemetry(b"k"))
    look_out = " ".join(_NEXT_DUE.split())

    async def scenario():
        await bot.start()
        await asyncio.sleep(1.3)  # startup: connections opened, the migration's WAL checkpointed
        mark = traced.mark()
        await asyncio.sleep(2.5)  # idle: about eight look-out periods, two checkpoint rounds
        idle = traced.since(mark)
        await bot.stop()
        return idle

    idle = asyncio.run(scenario())
    # Nothing but the look-out, and no transaction around it (no BEGIN, no claim, no checkpoint).
    assert idle and {re.sub(r"'[^']*'", "?", s) for s in idle} == {look_out}


def test_the_old_polling_settings_still_poll(tmp_path, traced):
    """The comparison bench/idle.py makes: with the old intervals the loops poll in transactions."""
    db = migrated(tmp_path)
    settings = BotSettings(app_secret="s", verify_token="t", outbox_poll_s=0.1, sweep_interval_s=0.1)
    bot = Bot(db, settings, Telemetry(b"k"))

    async def scenario():
        await bot.start()
        await asyncio.sleep(0.2)
        mark = traced.mark()
        await asyncio.sleep(1.0)
        idle = traced.since(mark)
        await bot.stop()
        return idle

    idle = asyncio.run(scenario())
    assert "BEGIN IMMEDIATE" in idle and any(s.startswith("SELECT m.SalienteId") for s in idle)


def test_a_commit_wakes_the_dispatcher_and_the_look_out_finds_rows_of_other_processes(tmp_path, traced):
    db = migrated(tmp_path)
    # A look-out period far longer than the test: only a wake-up can send the first reply.
    bot = Bot(db, BotSettings(app_secret="s", verify_token="t", lease_seconds=30), Telemetry(b"k"))
    message = decode_webhook(meta.envelope([meta.text_message("5215550003333", "hola", wamid="wamid.Q1")])).messages[0]

    async def first():
        await bot.start()
        await asyncio.sleep(0.1)
        await bot.ingest([message], [])
        delivered = await wait_for(lambda: outbox_states(db) and set(outbox_states(db)) == {"ENTREGADO"}, 10)
        await bot.stop()
        return delivered

    assert asyncio.run(first())

    # Another process committed a reply and died before sending it: no commit here announces it.
    bot = Bot(db, BotSettings(app_secret="s", verify_token="t", lease_seconds=0.5), Telemetry(b"k"))
    now = to_db("sqlite", utcnow())
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("INSERT INTO MensajesSalientes (MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido, "
                        "Estado, FechaCreacion) VALUES ('wamid.OTHER', 1, '5215550004444', 'text', "
                        "'{\"text\": \"hola\", \"options\": []}', 'PENDIENTE', ?)", (now,))

    async def other():
        await bot.start()
        delivered = await wait_for(lambda: set(outbox_states(db)) == {"ENTREGADO"}, 10)
        await bot.stop()
        return delivered

    assert asyncio.run(other())
