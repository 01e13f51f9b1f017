"""The commit transaction and its retries, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import inbox, outbox, processing
from bot_core.dbexec import DbExecutor
from bot_core.demo import seed_demo_equipment
from bot_core.processing import Processor, RetryPolicy
from bot_core.sqltime import from_db
from bot_core.webhook.payload import InboundMessage
from migrations.runner import MigrationRunner
from tests.conftest import captured_telemetry

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
TEL = "5215550003333"


@pytest.fixture
def setup(db):
    MigrationRunner(db).up()
    seed_demo_equipment(db)
    telemetry, capture = captured_telemetry()
    dbx = DbExecutor(db, threads=2)
    yield db, dbx, telemetry, capture
    dbx.close()


def ingest(dbx, message):
    return dbx.run_transaction(lambda cur: inbox.register_inbound(cur, dbx.db.dialect, message, NOW,
                                                                  NOW + timedelta(seconds=30)))


def counts(db):
    out = {}
    with db.connection() as conn:
        cur = conn.cursor()
        for table in ("SesionesChat", "MensajesChat", "HistorialSesiones", "Reportes", "MensajesSalientes"):
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            out[table] = cur.fetchone()[0]
        cur.execute("SELECT Estado FROM MensajesProcesados WHERE MensajeId = 'wamid.P1'")
        row = cur.fetchone()
        out["inbox"] = row[0] if row else None
        conn.rollback()
    return out


class FailingCursor:
    """Passes every call to the real cursor, but raises on the n-th write."""

    def __init__(self, cur, fail_at):
        self._cur, self._fail_at, self.writes = cur, fail_at, 0

    def _maybe_fail(self, sql):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.writes += 1
            if self.writes == self._fail_at:
                raise RuntimeError(f"injected failure at write {self.writes}")

    def execute(self, sql, params=()):
        self._maybe_fail(sql)
        return self._cur.execute(sql, params)

    def executemany(self, sql, rows):
        self._maybe_fail(sql)
        return self._cur.executemany(sql, rows)

    def __getattr__(self, name):
        return getattr(self._cur, name)


def test_a_failure_in_any_write_rolls_back_all_of_them_inbox_row_included(setup):
    db, dbx, telemetry, _ = setup
    message = InboundMessage("wamid.P1", TEL, "text", NOW, text="mi refri 4001234 no enfría")
    ingest(dbx, message)
    before = counts(db)
    assert before["inbox"] == inbox.PROCESSING
    processor = Processor(dbx, telemetry)
    total_writes = None
    for fail_at in range(1, 20):
        def commit(cur):
            failing = FailingCursor(cur, fail_at)
            try:
                return processor._commit(failing, message, None, NOW)
            finally:
                commit.writes = failing.writes
        try:
            dbx.run_transaction(commit)
        except RuntimeError as exc:
            assert f"write {fail_at}" in str(exc)
            assert counts(db) == before, f"failure at write {fail_at} left a partial commit"
            continue
        total_writes = commit.writes
        break
    # The commit has at least: inbox, session, chat, history, outbox (and succeeded once allowed to).
    assert total_writes is not None and total_writes >= 5
    after = counts(db)
    assert after["inbox"] == inbox.PROCESSED and after["SesionesChat"] == 1 and after["MensajesSalientes"] >= 1


def test_a_version_conflict_is_retried_with_logged_backoff(setup, monkeypatch):
    db, dbx, telemetry, capture = setup
    first = InboundMessage("wamid.P0", TEL, "text", NOW, text="hola")
    ingest(dbx, first)
    asyncio.run(Processor(dbx, telemetry).process(first))
    message = InboundMessage("wamid.P1", TEL, "text", NOW, text="refri")
    ingest(dbx, message)
    real_read = processing.read_user_and_session
    conflicts = {"left": 1}

    def read_then_someone_else_writes(cur, dialect, message, now):
        user, session = real_read(cur, dialect, message, now)
        telefono = user.key
        if conflicts["left"] and session is not None:
            conflicts["left"] -= 1
            # Another process commits a write of this phone between our read and our write.
            other = db.connect()
            try:
                with db.transaction(other) as ocur:
                    ocur.execute("UPDATE SesionesChat SET Version = Version + 1 WHERE Telefono = ?", (telefono,))
            finally:
                other.close()
        return user, session

    monkeypatch.setattr(processing, "read_user_and_session", read_then_someone_else_writes)
    if db.dialect == "sqlite":
        pytest.skip("SQLite's BEGIN IMMEDIATE holds the write lock: no other writer can commit in between")
    outcome = asyncio.run(Processor(dbx, telemetry).process(message))
    assert outcome.status == "processed"
    (retry,) = capture.events("concurrency.retry")
    assert retry.getMessage().startswith("[ConcurrencyRetry] Intento 1/3 falló, reintentando en ")
    assert 50 <= retry.custom_dimensions["delay_ms"] <= 63
    assert len(capture.events("concurrency.conflict")) == 1


def test_retries_exhausted_leave_the_row_for_the_sweeper(setup, monkeypatch):
    db, dbx, telemetry, capture = setup
    message = InboundMessage("wamid.P1", TEL, "text", NOW, text="hola")
    ingest(dbx, message)

    def always_conflict(cur, dialect, before, exists, transition, now, user=None):
        raise processing.ConcurrencyError("save_session", before.version)

    monkeypatch.setattr(processing, "save_session", always_conflict)
    outcome = asyncio.run(Processor(dbx, telemetry, retry=RetryPolicy(attempts=3, base_ms=1)).process(message))
    assert outcome.status == "deferred"
    assert [r.custom_dimensions["attempt"] for r in capture.events("concurrency.retry")] == [1, 2]
    assert capture.events("concurrency.exhausted")[0].custom_dimensions["attempts"] == 3
    assert counts(db)["inbox"] == inbox.PENDING and counts(db)["SesionesChat"] == 0
    # The sweeper's claim picks it up again, and with the conflict gone it is processed once.
    monkeypatch.undo()
    outcome = asyncio.run(Processor(dbx, telemetry).claim_and_process("wamid.P1"))
    assert outcome.status == "processed" and counts(db)["inbox"] == inbox.PROCESSED
    assert asyncio.run(Processor(dbx, telemetry).claim_and_process("wamid.P1")) is None


def test_retry_policy_is_three_attempts_with_two_waits():
    """The release note's "3 attempts" counts attempts: waits of 50 and 100 ms, none after the third."""
    policy = RetryPolicy()
    assert policy.schedule_ms() == [50, 100]
    assert [policy.delay_ms(n, rng=lambda: 0.0) for n in (1, 2)] == [50, 100]
    assert [policy.delay_ms(n, rng=lambda: 0.999) for n in (1, 2)] == [62, 124]
    for never in (0, 3):
        with pytest.raises(ValueError):
            policy.delay_ms(never)
    assert RetryPolicy(attempts=4).schedule_ms() == [50, 100, 200]


def test_exhausted_retries_wait_twice_and_log_each_retry(setup, monkeypatch):
    db, dbx, telemetry, capture = setup
    message = InboundMessage("wamid.P1", TEL, "text", NOW, text="hola")
    ingest(dbx, message)
    tries = []

    def always_conflict(cur, dialect, before, exists, transition, now, user=None):
        tries.append(now)
        raise processing.ConcurrencyError("save_session", before.version)

    monkeypatch.setattr(processing, "save_session", always_conflict)
    assert asyncio.run(Processor(dbx, telemetry).process(message)).status == "deferred"
    retries = capture.events("concurrency.retry")
    assert len(tries) == 3 and len(retries) == 2
    assert [r.getMessage().split(" reintentando")[0] for r in retries] == [
        "[ConcurrencyRetry] Intento 1/3 falló,", "[ConcurrencyRetry] Intento 2/3 falló,"]
    delays = [r.custom_dimensions["delay_ms"] for r in retries]
    assert 50 <= delays[0] <= 62 and 100 <= delays[1] <= 125, delays
    assert capture.events("concurrency.exhausted")[0].custom_dimensions["attempts"] == 3


class RecordingSender:
    def __init__(self):
        self.sent = []

    async def send(self, message):
        self.sent.append((message.outbox_id, message.message_id, message.sequence, message.attempts))
        return outbox.SendResult(outbox.DELIVERED, wamid=f"local.{message.outbox_id}")


def outbox_rows(db):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT SalienteId, MensajeOrigenId, Estado, Intentos, LeaseHasta FROM MensajesSalientes "
                    "ORDER BY SalienteId")
        rows = [(int(r[0]), r[1], r[2], int(r[3]), from_db(r[4])) for r in cur.fetchall()]
        conn.rollback()
    return rows


def test_replies_are_committed_claimed_and_a_crash_after_the_commit_leaves_them_to_the_claim_path(setup):
    db, dbx, telemetry, _ = setup
    lease = 30.0
    message = InboundMessage("wamid.P1", TEL, "text", NOW, text="mi refri 4001234 no enfría")
    ingest(dbx, message)
    outcome = asyncio.run(Processor(dbx, telemetry, lease_seconds=lease, clock=lambda: NOW).process(message))
    # The commit inserted the reply already claimed for this worker: no claim round trip is needed.
    assert outcome.status == "processed" and outcome.replies == 1 and outcome.unclaimed == 0
    (claimed,) = outcome.claimed
    rows = outbox_rows(db)
    assert rows == [(claimed.outbox_id, "wamid.P1", outbox.SENDING, 1, NOW + timedelta(seconds=lease))]
    assert claimed.attempts == 1 and claimed.text
    # The worker dies before sending. Within its lease nobody else takes the reply...
    sender = RecordingSender()
    early = outbox.Dispatcher(dbx, sender, telemetry, lease_seconds=lease,
                              clock=lambda: NOW + timedelta(seconds=lease - 1))
    assert asyncio.run(early.drain_once()) == 0 and sender.sent == []
    # ...after it, the claim path sends it, once, as its second attempt.
    late = outbox.Dispatcher(dbx, sender, telemetry, lease_seconds=lease,
                             clock=lambda: NOW + timedelta(seconds=lease + 1))
    assert asyncio.run(late.drain(5.0)) == 1
    assert sender.sent == [(claimed.outbox_id, "wamid.P1", 1, 2)]
    assert [(r[2], r[3]) for r in outbox_rows(db)] == [(outbox.DELIVERED, 2)]


def test_a_reply_behind_an_unsent_one_to_the_same_recipient_waits_for_the_claim_path(setup):
    db, dbx, telemetry, _ = setup
    first = InboundMessage("wamid.P1", TEL, "text", NOW, text="hola")
    second = InboundMessage("wamid.P2", TEL, "text", NOW, text="mi refri 4001234 no enfría")
    processor = Processor(dbx, telemetry, clock=lambda: NOW)
    ingest(dbx, first)
    one = asyncio.run(processor.process(first))
    ingest(dbx, second)
    two = asyncio.run(processor.process(second))
    # The first message's replies are still being sent: the second's must not overtake them.
    assert one.claimed and one.unclaimed == 0
    assert two.claimed == () and two.unclaimed == two.replies > 0
    assert {r[2] for r in outbox_rows(db) if r[1] == "wamid.P2"} == {outbox.PENDING}
    sender = RecordingSender()
    dispatcher = outbox.Dispatcher(dbx, sender, telemetry, clock=lambda: NOW)
    assert asyncio.run(dispatcher.drain_once()) == 0  # held behind the first message's replies
    asyncio.run(dispatcher.send_claimed(one.claimed))
    asyncio.run(dispatcher.drain(5.0))
    assert [m for _, m, _, _ in sender.sent] == ["wamid.P1"] * one.replies + ["wamid.P2"] * two.replies
    assert [r[0] for r in outbox_rows(db)] == [s[0] for s in sender.sent]  # in the order written
