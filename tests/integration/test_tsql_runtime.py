"""Every T-SQL statement the bot and the migration runner send at run time parses and passes the linter.

The real code paths run on the ``mssql`` dialect against a recording stand-in for SQL Server
(tests/support/tsql_recorder.py): ingest (new and duplicate), processing that creates a
report, the after-commit send and a failed send retried by a round, statuses, the sweeper,
the look-out, health, the runner's up/status/validate/down and the rollback rehearsal
(schema introspection, server version). Every distinct statement is
checked with migrations/tsql_check.py. Nothing here lists statements: one added to any of
these paths later is collected and checked the same way.
"""

from __future__ import annotations

import asyncio

import pytest

from bot_core import inbox, pending_work
from bot_core.app import Bot, BotSettings
from bot_core.demo import seed_demo_equipment
from bot_core.outbox import PENDING, SENT, SendResult
from bot_core.sqltime import utcnow
from bot_core.storage import open_database
from bot_core.telemetry import Telemetry
from bot_core.webhook import meta
from bot_core.webhook.payload import decode_webhook
from migrations.rehearse import rehearse
from migrations.runner import MigrationRunner
from migrations.tsql_check import check_script
from ops.loadtest.traffic import CONFIRM
from tests.conftest import ROOT
from tests.support.tsql_recorder import RecordingDatabase, migration_statements

pytest.importorskip("sqlglot", reason="sqlglot (the T-SQL parser) is not installed")
PHONE, OTHER = "5215550007777", "5215550008888"


class FlakySender:
    """The Graph API as the dispatcher sees it: the first send to OTHER fails (retryable)."""

    def __init__(self):
        self.sent = 0
        self.failed = False

    async def send(self, message):
        if message.telefono == OTHER and not self.failed:
            self.failed = True
            return SendResult(PENDING, retry_after_s=0.2, error_code="131000", error_detail="try later")
        self.sent += 1
        return SendResult(SENT, wamid=f"wamid.SENT{self.sent}")


def inbound(message: dict):
    return decode_webhook(meta.envelope([message])).messages


def exercise(tmp_path, healthy: bool = True) -> list[str]:
    """Run every runtime path on mssql; return the distinct statements SQL Server was sent."""
    backing = tmp_path / "backing.db"
    real = open_database(f"sqlite:///{backing}")
    MigrationRunner(real).up()
    seed_demo_equipment(real)
    ddl = migration_statements(ROOT)
    db = RecordingDatabase.over(str(backing), ddl)
    bot = Bot(db, BotSettings(app_secret="s", verify_token="t", lease_seconds=0.2, sqlite_inline=False),
              Telemetry(b"k"), sender=FlakySender(), background=False)

    async def bot_paths():
        await bot.start()
        first = inbound(meta.text_message(PHONE, "mi refri 4001234 no enfría", wamid="wamid.T1"))
        assert await bot.ingest(first, []) == (1, 0)
        assert await bot.ingest(first, []) == (0, 1)  # the duplicate: MERGE's matched branch
        confirm = inbound(meta.reply_message(PHONE, *CONFIRM, wamid="wamid.T2"))
        assert await bot.ingest(confirm, []) == (1, 0)
        await bot.ingest(inbound(meta.text_message(OTHER, "hola", wamid="wamid.T3")), [])
        statuses = decode_webhook(meta.envelope(statuses=[meta.status_update("wamid.SENT1", "delivered", PHONE),
                                                          meta.status_update("wamid.SENT1", "read", PHONE)]))
        await bot.ingest([], statuses.statuses)
        # A message recorded by a worker that froze before its commit: the sweeper's to take over.
        stale = inbound(meta.text_message(OTHER, "sigo aquí", wamid="wamid.T4"))[0]
        now = utcnow()
        await bot.dbx.transaction(inbox.register_inbound, "mssql", stale, now, now)
        due = await bot.dbx.single(pending_work.next_due)
        assert due.inbox is not None and due.outbox is not None  # the stale row, the failed send
        await asyncio.sleep(0.3)  # the failed send's retry time and the stale lease pass
        result = await bot.run_round(5.0)
        assert result.swept == 1 and result.processed == 1 and result.sent >= 1
        assert ((await bot.health()) is None) == healthy
        await bot.stop()

    asyncio.run(bot_paths())
    with real.connection() as conn:  # what SQL Server would now hold, read back on the SQLite side
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM Reportes WHERE MensajeOrigenId = 'wamid.T2'")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT Estado FROM MensajesSalientes WHERE WamidSaliente = 'wamid.SENT1'")
        assert cur.fetchone()[0] == "LEIDO"
        cur.execute("SELECT COUNT(*) FROM MensajesSalientes WHERE Estado <> 'ENVIADO' AND WamidSaliente IS NULL")
        assert cur.fetchone()[0] == 0  # every reply sent, the failed one on its retry
        cur.execute("SELECT Reintentos FROM MensajesProcesados WHERE MensajeId = 'wamid.T1'")
        assert cur.fetchone()[0] == 1

    runner_db = RecordingDatabase(url=db.url, sqlite_path=str(tmp_path / "runner.db"), recording=db.recording,
                                  ddl=db.ddl)
    # The rehearsal drives the runner: up --to each version, down step by step, up, introspecting.
    evidence = rehearse(runner_db)
    assert evidence["dialect"] == "mssql" and "stand-in" in evidence["server_version"]
    runner = MigrationRunner(runner_db)
    assert all(s.state == "applied" for s in runner.status())
    assert runner.validate() == []
    runner.down(to=0)
    assert [s.state for s in runner.status()][1:] == ["pending"] * (len(evidence["versions"]) - 1)
    return [s for s in db.recording.distinct() if s not in ddl]


def findings_of(statements: list[str]) -> list[str]:
    out = []
    for i, sql in enumerate(statements):
        out += [f"{f.rule}: {f.message}\n    {sql}" for f in check_script(sql, f"runtime-{i}")]
    return out


def test_every_runtime_tsql_statement_parses_and_passes_the_linter(tmp_path, capsys):
    statements = exercise(tmp_path)
    findings = findings_of(statements)
    with capsys.disabled():
        print(f"\nT-SQL runtime statements checked: {len(statements)} distinct")
    assert not findings, "\n".join(findings)
    text = "\n".join(statements)
    # The paths really ran on the mssql dialect (the forms only SQL Server gets).
    for marker in ("MERGE dbo.MensajesProcesados WITH (HOLDLOCK)", "OUTPUT inserted.", "TOP (",
                   "WITH (UPDLOCK, READPAST, ROWLOCK)", "sp_getapplock", "SET XACT_ABORT ON", "sys.index_columns",
                   "SERVERPROPERTY"):
        assert marker in text, marker
    assert len(statements) >= 25


def test_a_planted_statement_is_collected_and_reported(tmp_path, monkeypatch):
    """A MERGE without HOLDLOCK and an unparsable health query, planted in the real paths."""
    monkeypatch.setattr(inbox, "_MERGE", inbox._MERGE.replace(" WITH (HOLDLOCK)", ""))

    def broken_health(self, cur):
        cur.execute("SELECT COUNT(*) FROM MensajesProcesados WHERE 1 = = 0")

    monkeypatch.setattr(Bot, "_health", broken_health)
    statements = exercise(tmp_path, healthy=False)  # the stand-in cannot carry out what does not parse
    findings = findings_of(statements)
    assert any(f.startswith("merge-holdlock") for f in findings)
    assert any(f.startswith("parse") and "1 = = 0" in f for f in findings)


def test_the_recorder_refuses_what_it_cannot_carry_out(tmp_path):
    backing = tmp_path / "b.db"
    MigrationRunner(open_database(f"sqlite:///{backing}")).up()
    conn = RecordingDatabase.over(str(backing)).connect()
    with pytest.raises(Exception):
        conn.cursor().execute("SELEC 1 FROM")
    conn.close()
