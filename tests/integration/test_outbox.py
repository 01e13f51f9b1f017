"""The outbox's own paths on real SQLite and PostgreSQL: replies inserted by the commit (claimed,
or held behind an earlier unsent reply to the same recipient), the after-commit sends, the
bounded drain and the background loop. A recording sender stands in for the Graph API (its
own tests are in test_graph_sender.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import outbox
from bot_core.conversation.model import Reply
from bot_core.dbexec import DbExecutor
from bot_core.outbox import Dispatcher, OutboundMessage, SendResult
from bot_core.sqltime import from_db, to_db, utcnow
from migrations.runner import MigrationRunner
from tests.conftest import captured_telemetry

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
LEASE = NOW + timedelta(seconds=30)
TEL, OTHER = "5215550004444", "5215550005555"
WAIT_S = 10.0  # the longest anything below is waited for (a bound, never an expectation)


@pytest.fixture
def migrated(db):
    MigrationRunner(db).up()
    return db


@pytest.fixture
def dbx(db):
    executor = DbExecutor(db, threads=2)
    yield executor
    executor.close()


def insert(db, origin, replies, recipient=TEL, ids=(None, None)):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            return outbox.insert_replies(cur, db.dialect, origin, recipient, replies, to_db(db.dialect, NOW),
                                         to_db(db.dialect, LEASE), ids)


def pending(db, rows):
    """Outbox rows as a commit left them for the claim path: PENDIENTE, never attempted."""
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.executemany("INSERT INTO MensajesSalientes (MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido, "
                            "Estado) VALUES (?, 1, ?, 'text', ?, 'PENDIENTE')",
                            [(origin, tel, json.dumps({"text": f"respuesta a {origin}", "options": []}))
                             for origin, tel in rows])


def outbox_rows(db):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT SalienteId, MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido, Estado, LeaseHasta, "
                    "Intentos, FechaCreacion, UsuarioId, UsuarioIdPadre FROM MensajesSalientes ORDER BY SalienteId")
        names = ("id", "origin", "seq", "tel", "kind", "content", "state", "lease", "attempts", "created", "user_id",
                 "parent")
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        conn.rollback()
    for row in rows:
        row["id"], row["attempts"] = int(row["id"]), int(row["attempts"])
        row["lease"], row["created"] = from_db(row["lease"]), from_db(row["created"])
    return rows


def set_state(db, origin, state):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE MensajesSalientes SET Estado = ? WHERE MensajeOrigenId = ?", (state, origin))


class RecordingSender:
    """Records what it is asked to send; answers from ``answers`` in turn, then delivered."""

    def __init__(self, answers=()):
        self.sent: list[tuple[str, str, int]] = []
        self.answers = list(answers)

    async def send(self, message):
        self.sent.append((message.message_id, message.telefono, message.attempts))
        if self.answers:
            return self.answers.pop(0)
        return SendResult(outbox.DELIVERED, wamid=f"local.{message.outbox_id}")


def run(coro):
    """``asyncio.run`` with a bound: a dispatcher that never finishes fails the test, not hangs it."""
    return asyncio.run(asyncio.wait_for(coro, WAIT_S))


async def until(condition, what):
    """Wait for ``condition()`` (polled), failing after WAIT_S: the loop under test should get there."""
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(poll(), WAIT_S)
    except asyncio.TimeoutError:
        raise AssertionError(f"not seen within {WAIT_S} s: {what}") from None


def test_replies_are_inserted_claimed_in_the_order_written_with_their_content_and_ids(migrated):
    db = migrated
    replies = (Reply("text", "¿Qué falla?"), Reply("buttons", "¿Seguimos?", (("si", "Sí"), ("no", "No"))))
    claimed = insert(db, "wamid.A", replies, ids=("MX.1", "MX.PARENT"))
    rows = outbox_rows(db)
    assert claimed == (
        OutboundMessage(rows[0]["id"], "wamid.A", 1, TEL, "text", "¿Qué falla?", (), 1),
        OutboundMessage(rows[1]["id"], "wamid.A", 2, TEL, "buttons", "¿Seguimos?", (("si", "Sí"), ("no", "No")), 1))
    for row, seq, kind in zip(rows, (1, 2), ("text", "buttons")):
        assert (row["origin"], row["seq"], row["tel"], row["kind"], row["state"], row["lease"], row["attempts"],
                row["created"], row["user_id"], row["parent"]) == (
            "wamid.A", seq, TEL, kind, outbox.SENDING, LEASE, 1, NOW, "MX.1", "MX.PARENT")
    assert json.loads(rows[1]["content"]) == {"text": "¿Seguimos?", "options": [["si", "Sí"], ["no", "No"]]}
    assert "¿Qué falla?" in rows[0]["content"]  # stored readable (ensure_ascii=False), not as \u escapes
    assert insert(db, "wamid.Z", ()) == () and len(outbox_rows(db)) == 2


@pytest.mark.parametrize("earlier, holds", [(outbox.PENDING, True), (outbox.SENDING, True),
                                            (outbox.SENT, False), (outbox.FAILED, False)])
def test_replies_behind_an_unsent_one_to_the_same_recipient_are_inserted_pending(migrated, earlier, holds):
    """The in-flight guard at the commit: an earlier reply to the recipient still waiting for
    its retry or being sent holds every later one (inserted PENDIENTE, no lease, no attempt)."""
    db = migrated
    insert(db, "wamid.A", (Reply("text", "primera"),))
    set_state(db, "wamid.A", earlier)
    later = insert(db, "wamid.B", (Reply("text", "segunda"), Reply("text", "tercera")))
    other = insert(db, "wamid.C", (Reply("text", "a otro"),), recipient=OTHER)
    rows = {(r["origin"], r["seq"]): r for r in outbox_rows(db)}
    assert [m.message_id for m in other] == ["wamid.C"] and rows[("wamid.C", 1)]["state"] == outbox.SENDING
    if holds:
        assert later == ()
        assert [(rows[("wamid.B", s)]["state"], rows[("wamid.B", s)]["lease"], rows[("wamid.B", s)]["attempts"])
                for s in (1, 2)] == [(outbox.PENDING, None, 0)] * 2
    else:
        assert [(m.message_id, m.sequence, m.text) for m in later] == [("wamid.B", 1, "segunda"),
                                                                        ("wamid.B", 2, "tercera")]
        assert {rows[("wamid.B", s)]["state"] for s in (1, 2)} == {outbox.SENDING}


def test_the_after_commit_send_wakes_the_claim_path_for_what_waited_behind_it(migrated):
    """A commit whose replies were held (``held_back``) is followed by the claim path as soon as
    this process's after-commit send to that recipient is done; nothing else wakes it."""
    db = migrated
    first = insert(db, "wamid.A", (Reply("text", "primera"),))
    assert insert(db, "wamid.B", (Reply("text", "segunda"),)) == ()
    sender, (telemetry, _) = RecordingSender(), captured_telemetry()
    counting = CountingExecutor(db)
    dispatcher = Dispatcher(counting, sender, telemetry, clock=lambda: NOW)

    async def go():
        loop = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: counting.calls, "the loop's first look")  # B held behind A's live lease
            assert sender.sent == []
            dispatcher.held_back(TEL)
            assert await dispatcher.send_claimed(first) == 1
            await until(lambda: len(sender.sent) == 2, "the held reply sent after the one ahead")
        finally:
            dispatcher.stop()
            await asyncio.wait_for(loop, WAIT_S)

    try:
        run(go())
    finally:
        counting.close()
    assert sender.sent == [("wamid.A", TEL, 1), ("wamid.B", TEL, 1)]
    assert [r["state"] for r in outbox_rows(db)] == [outbox.DELIVERED] * 2


def test_only_a_live_hold_of_the_same_recipient_wakes_the_claim_path(migrated, dbx):
    db = migrated
    telemetry, _ = captured_telemetry()
    first = insert(db, "wamid.A", (Reply("text", "primera"),))
    second = insert(db, "wamid.B", (Reply("text", "a otro"),), recipient=OTHER)

    async def go():
        dispatcher = Dispatcher(dbx, RecordingSender(), telemetry, clock=lambda: NOW, lease_seconds=0.05)
        dispatcher.held_back(OTHER)
        await dispatcher.send_claimed(first)
        another_recipient = dispatcher._wake.is_set()
        await asyncio.sleep(0.2)  # OTHER's hold lasts one lease (50 ms here): it has expired
        await dispatcher.send_claimed(second)
        return another_recipient, dispatcher._wake.is_set()

    assert run(go()) == (False, False)


def test_a_failed_recording_is_reported_and_leaves_the_rows_to_their_lease(db, dbx):
    """The database fails after the send (here it has no outbox table): the after-commit send
    reports it and returns 0; the rows, if any, stay ENVIANDO for the claim path."""
    telemetry, capture = captured_telemetry()
    sender = RecordingSender()
    message = OutboundMessage(1, "wamid.A", 1, TEL, "text", "hola", (), 1)
    dispatcher = Dispatcher(dbx, sender, telemetry, clock=lambda: NOW)
    assert run(dispatcher.send_claimed((message,))) == 0
    assert run(dispatcher.send_replies_of("wamid.A")) == 0
    assert sender.sent == [("wamid.A", TEL, 1)]
    with pytest.raises(Exception) as missing:  # what the database raises for that, named in the report
        dbx.run_single(lambda cur: cur.execute("SELECT SalienteId FROM MensajesSalientes"))
    raised = type(missing.value).__name__
    degraded = capture.events("operation.degraded")
    assert [(e.custom_dimensions["operation"], e.custom_dimensions["error_type"]) for e in degraded] == \
        [("dispatch_outbox", raised)] * 2


def test_send_replies_of_sends_only_that_messages_replies(migrated, dbx):
    """The after-commit send of one message's replies (one here is a retry now due), leased for
    the dispatcher's lease like any claim."""
    db = migrated
    pending(db, [("wamid.A", TEL), ("wamid.B", OTHER)])
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE MensajesSalientes SET ProximoIntento = ? WHERE MensajeOrigenId = 'wamid.A'",
                        (to_db(db.dialect, NOW - timedelta(seconds=1)),))
    seen_lease = []

    class PeekingSender(RecordingSender):
        async def send(self, message):
            seen_lease.append(raw_times(db, "LeaseHasta")[0])
            return await super().send(message)

    sender, (telemetry, _) = PeekingSender(), captured_telemetry()
    dispatcher = Dispatcher(dbx, sender, telemetry, lease_seconds=45.0, clock=lambda: NOW)
    assert run(dispatcher.send_replies_of("wamid.A")) == 1
    assert sender.sent == [("wamid.A", TEL, 1)]
    assert seen_lease == [to_db(db.dialect, NOW + timedelta(seconds=45))]
    assert [(r["origin"], r["state"]) for r in outbox_rows(db)] == [("wamid.A", outbox.DELIVERED),
                                                                     ("wamid.B", outbox.PENDING)]


def test_a_drain_takes_batch_after_batch_until_nothing_is_due(migrated, dbx):
    db = migrated
    pending(db, [(f"wamid.{i}", f"52155500060{i:02d}") for i in range(5)])
    sender, (telemetry, _) = RecordingSender(), captured_telemetry()
    dispatcher = Dispatcher(dbx, sender, telemetry, batch=2, clock=lambda: NOW)
    assert run(dispatcher.drain(0.0)) == 0 and sender.sent == []  # no budget: no round
    assert run(dispatcher.drain(WAIT_S)) == 5
    assert sorted(m for m, _, _ in sender.sent) == [f"wamid.{i}" for i in range(5)]
    assert run(dispatcher.drain(WAIT_S)) == 0


def test_the_loop_sends_on_a_kick_and_otherwise_sleeps(migrated):
    """Without a poll interval the loop looks only when kicked (and at retries it scheduled): one
    claim at the start, one per kick, none in between; ``stop`` ends it."""
    db = migrated
    sender, (telemetry, _) = RecordingSender(), captured_telemetry()
    counting = CountingExecutor(db)
    dispatcher = Dispatcher(counting, sender, telemetry, clock=lambda: NOW)

    def claims():
        return sum(1 for _, fn in counting.calls if fn == "claim_batch")

    async def go():
        loop = asyncio.ensure_future(dispatcher.run())
        await until(lambda: claims() == 1, "the loop's first look")
        pending(db, [("wamid.A", TEL)])
        await asyncio.sleep(0.3)
        unkicked = (claims(), list(sender.sent))  # nothing looks without a kick
        dispatcher.kick()
        await until(lambda: sender.sent, "the kicked loop sending")
        await until(lambda: claims() >= 3, "the look after a round that sent something")
        await asyncio.sleep(0.3)
        idle = claims()  # that look found nothing: the loop sleeps again
        dispatcher.stop()
        await asyncio.wait_for(loop, WAIT_S)
        return unkicked, idle

    try:
        assert run(go()) == ((1, []), 3)
    finally:
        counting.close()
    assert sender.sent == [("wamid.A", TEL, 1)]


def test_a_failed_drain_is_reported_and_the_loop_waits_for_the_next_reason_to_look(db):
    counting = CountingExecutor(db)  # the database has no tables: every claim fails
    telemetry, capture = captured_telemetry()
    dispatcher = Dispatcher(counting, RecordingSender(), telemetry, clock=lambda: NOW)

    async def go():
        loop = asyncio.ensure_future(dispatcher.run())
        await until(lambda: capture.events("operation.degraded"), "the failed drain reported")
        await asyncio.sleep(0.3)
        failed = len(counting.calls)
        dispatcher.stop()
        await asyncio.wait_for(loop, WAIT_S)
        return failed

    try:
        assert run(go()) == 1
    finally:
        counting.close()


def test_the_held_recipients_are_forgotten_once_more_than_a_thousand_have_expired(migrated, dbx):
    """``held_back`` remembers a recipient for one lease; past 1000 entries the expired ones go."""
    dispatcher = Dispatcher(dbx, RecordingSender(), captured_telemetry()[0], lease_seconds=0.05)

    async def go():
        for i in range(1000):
            dispatcher.held_back(f"5215551{i:06d}")
        await asyncio.sleep(0.2)  # every hold has expired
        dispatcher.held_back("5215559000001")
        kept = len(dispatcher._held)
        dispatcher.held_back("5215559000002")
        return kept, sorted(dispatcher._held)

    assert run(go()) == (1001, ["5215559000001", "5215559000002"])


def test_the_loop_polls_when_told_to_and_outlives_a_database_failure(db, dbx):
    """With ``poll_interval_s`` the loop looks by itself; a drain that fails (here: the tables
    are not there yet) is reported and the loop goes on."""
    sender, (telemetry, capture) = RecordingSender(), captured_telemetry()
    dispatcher = Dispatcher(dbx, sender, telemetry, poll_interval_s=0.05, clock=lambda: NOW)

    async def go():
        loop = asyncio.ensure_future(dispatcher.run())
        await until(lambda: len(capture.events("operation.degraded")) >= 2, "failed drains reported")
        await asyncio.get_running_loop().run_in_executor(None, MigrationRunner(db).up)
        pending(db, [("wamid.A", TEL)])
        await until(lambda: sender.sent, "the polling loop sending")
        dispatcher.stop()
        await asyncio.wait_for(loop, WAIT_S)

    run(go())
    assert sender.sent == [("wamid.A", TEL, 1)]
    with pytest.raises(Exception) as missing:  # what the database raised before the migration
        dbx.run_single(lambda cur: cur.execute("SELECT SalienteId FROM MensajesSalientes WHERE SalienteId = 0 "
                                               "AND Nada = 1"))
    assert {(e.custom_dimensions["operation"], e.custom_dimensions["error_type"])
            for e in capture.events("operation.degraded")} == {("dispatch_outbox", type(missing.value).__name__)}


def test_the_loop_comes_back_for_a_retry_it_scheduled(migrated, dbx):
    """A send told to retry later is looked at again when it falls due, without a kick, even
    with a poll interval far longer than the retry's wait."""
    db = migrated
    pending(db, [("wamid.A", TEL)])
    sender = RecordingSender([SendResult(outbox.PENDING, retry_after_s=0.3, error_code="131000")])
    telemetry, _ = captured_telemetry()
    dispatcher = Dispatcher(dbx, sender, telemetry, poll_interval_s=3600.0, clock=utcnow)

    async def go():
        loop = asyncio.ensure_future(dispatcher.run())
        await until(lambda: len(sender.sent) == 2, "the retry sent once due")
        dispatcher.stop()
        await asyncio.wait_for(loop, WAIT_S)

    run(go())
    assert sender.sent == [("wamid.A", TEL, 1), ("wamid.A", TEL, 2)]
    assert [(r["state"], r["attempts"]) for r in outbox_rows(db)] == [(outbox.DELIVERED, 2)]


def raw_times(db, column):
    """A time column as stored: the format the claim's comparisons rely on (text on SQLite)."""
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT {column} FROM MensajesSalientes ORDER BY SalienteId")
        values = [r[0] for r in cur.fetchall()]
        conn.rollback()
    return values


def results_columns(db):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado, LeaseHasta, Intentos, WamidSaliente, CodigoError, DetalleError, ProximoIntento, "
                    "FechaEnvio, FechaActualizacion FROM MensajesSalientes ORDER BY SalienteId")
        rows = [(r[0], r[1], int(r[2]), r[3], r[4], r[5], from_db(r[6]), from_db(r[7]), from_db(r[8]))
                for r in cur.fetchall()]
        conn.rollback()
    return rows


def test_record_results_writes_each_outcome_and_only_over_a_row_still_being_sent(migrated):
    db = migrated
    when = NOW + timedelta(milliseconds=250)
    claimed = [insert(db, f"wamid.{i}", (Reply("text", f"r{i}"),), recipient=f"52155500070{i:02d}")[0]
               for i in range(5)]
    set_state(db, "wamid.4", outbox.SENT)  # recorded meanwhile by another sender (its lease had expired)
    results = [
        SendResult(outbox.SENT, wamid="wamid.OUT0"),
        SendResult(outbox.FAILED, error_code="131047", error_detail="x" * 500),
        SendResult(outbox.PENDING, retry_after_s=1.5, error_code="131000", error_detail="y" * 500),
        SendResult(outbox.PENDING, error_code="held"),  # held back before the API: not an attempt
        SendResult(outbox.FAILED, error_code="131026"),
    ]
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            outbox.record_results(cur, db.dialect, list(zip(claimed, results)), when)
    rows = results_columns(db)
    assert rows[0] == (outbox.SENT, None, 1, "wamid.OUT0", None, None, None, when, when)
    assert rows[1] == (outbox.FAILED, None, 1, None, "131047", "x" * 400, None, when, when)
    assert rows[2] == (outbox.PENDING, None, 1, None, "131000", "y" * 400, when + timedelta(seconds=1.5), None, when)
    assert rows[3] == (outbox.PENDING, None, 0, None, "held", "", when + timedelta(seconds=1), None, when)
    assert rows[4][0] == outbox.SENT and rows[4][4] is None  # not overwritten
    updated = raw_times(db, "FechaActualizacion")
    assert updated[:4] == [to_db(db.dialect, when)] * 4
    assert raw_times(db, "FechaEnvio")[:2] == [to_db(db.dialect, when)] * 2
    assert raw_times(db, "ProximoIntento")[2] == to_db(db.dialect, when + timedelta(seconds=1.5))
    # Due exactly at its retry time, not a millisecond before.
    due = when + timedelta(seconds=1)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert [m.message_id for m in outbox.claim_batch(cur, db.dialect, due - timedelta(milliseconds=1),
                                                             due + timedelta(seconds=30), 10)] == []
            assert [m.message_id for m in outbox.claim_batch(cur, db.dialect, due, due + timedelta(seconds=30), 10)] \
                == ["wamid.3"]
            later = when + timedelta(seconds=1.5)
            assert [(m.message_id, m.attempts) for m in outbox.claim_batch(cur, db.dialect, later,
                                                                          later + timedelta(seconds=30), 10)] \
                == [("wamid.2", 2)]


def test_a_status_moves_a_row_forward_only_for_its_recipient_and_records_the_bsuid(migrated):
    db = migrated
    claimed = [insert(db, f"wamid.{i}", (Reply("text", "hola"),), recipient=(TEL, "5215550009999", OTHER)[i],
                      ids=("MX.KNOWN", None) if i == 2 else (None, None))[0] for i in range(3)]
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            outbox.record_results(cur, db.dialect, [(m, SendResult(outbox.SENT, wamid=f"wamid.OUT{i}"))
                                                    for i, m in enumerate(claimed)], NOW)
    when = NOW + timedelta(milliseconds=250)

    def status(wamid, state, **kw):
        with db.connection() as conn:
            with db.transaction(conn) as cur:
                return outbox.apply_status(cur, db.dialect, wamid, state, when, **kw)

    assert not status("wamid.OUT0", "deleted", recipient=TEL)  # not a status we know
    assert not status("wamid.OUT0", "read", recipient=None)  # names no recipient
    # Known by BSUID only: matched against the row's user id once one is recorded.
    assert status("wamid.OUT0", "delivered", recipient=TEL, recipient_user_id="MX.NEW")
    assert status("wamid.OUT0", "read", recipient=None, recipient_user_id="MX.NEW")
    assert not status("wamid.OUT0", "read", recipient=TEL)  # once read, read again is no news
    assert not status("wamid.OUT1", "read", recipient=None, recipient_user_id="MX.NEW")  # another user's BSUID
    assert status("wamid.OUT2", "delivered", recipient=None, recipient_user_id="MX.KNOWN")
    assert status("wamid.OUT2", "read", recipient=OTHER, recipient_user_id="MX.OTHER")  # keeps the known one
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado, UsuarioId FROM MensajesSalientes ORDER BY SalienteId")
        rows = [tuple(r) for r in cur.fetchall()]
        conn.rollback()
    assert rows == [(outbox.READ, "MX.NEW"), (outbox.SENT, None), (outbox.READ, "MX.KNOWN")]
    assert raw_times(db, "FechaActualizacion") == [to_db(db.dialect, when), to_db(db.dialect, NOW),
                                                    to_db(db.dialect, when)]


def test_two_claimers_never_take_the_same_reply(migrated):
    """One claim's rows, leased but not yet committed, are not claimed by a second claimer at the
    same moment: PostgreSQL skips the locked rows (FOR UPDATE SKIP LOCKED); SQLite's second
    writer waits for the first and then finds them leased."""
    import threading

    db = migrated
    pending(db, [("wamid.A", TEL), ("wamid.B", OTHER)])
    first = db.connect()
    second_claim: list = []
    try:
        with db.transaction(first) as cur:
            taken = outbox.claim_batch(cur, db.dialect, NOW, LEASE, 10)

            def claim_again():
                with db.connection() as conn:
                    with db.transaction(conn) as cur2:
                        second_claim.append(outbox.claim_batch(cur2, db.dialect, NOW, LEASE, 10))

            other = threading.Thread(target=claim_again)
            other.start()
            other.join(2.0)  # SKIP LOCKED answers at once; a claimer that waits is let through below
        other.join(WAIT_S)
    finally:
        first.close()
    rows = outbox_rows(db)
    assert taken == [OutboundMessage(rows[0]["id"], "wamid.A", 1, TEL, "text", "respuesta a wamid.A", (), 1),
                     OutboundMessage(rows[1]["id"], "wamid.B", 1, OTHER, "text", "respuesta a wamid.B", (), 1)]
    assert second_claim == [[]]


def test_a_claim_takes_its_defaults_and_a_lease_holds_until_the_moment_it_ends(migrated, dbx):
    """A dispatcher's defaults: at most 50 rows a claim, leased for 30 s. A lease ending at a
    millisecond is live at that millisecond and expired at the next (the stored text compares)."""
    db = migrated
    pending(db, [(f"wamid.{i}", f"52155501{i:05d}") for i in range(52)])
    with db.connection() as conn:
        with db.transaction(conn) as cur:  # a hand-written row: options, and no text
            cur.execute("UPDATE MensajesSalientes SET Tipo = 'buttons', Contenido = ? WHERE MensajeOrigenId = ?",
                        (json.dumps({"options": [["si", "Sí"]]}), "wamid.0"))
    start = NOW + timedelta(milliseconds=250)
    sender = RecordingSender()
    dispatcher = Dispatcher(dbx, sender, captured_telemetry()[0], clock=lambda: start)
    claimed = run(dbx.transaction(outbox.claim_batch, db.dialect, start, start + timedelta(seconds=30), 1, "wamid.0"))
    assert [(m.kind, m.text, m.options) for m in claimed] == [("buttons", "", (("si", "Sí"),))]
    ends = start + timedelta(seconds=30)
    assert run(dbx.transaction(outbox.claim_batch, db.dialect, ends, ends + timedelta(seconds=30), 1, "wamid.0")) == []
    after = ends + timedelta(milliseconds=1)
    again = run(dbx.transaction(outbox.claim_batch, db.dialect, after, after + timedelta(seconds=30), 1, "wamid.0"))
    assert [(m.message_id, m.attempts) for m in again] == [("wamid.0", 2)]
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE MensajesSalientes SET Estado = 'ENVIADO' WHERE MensajeOrigenId = 'wamid.0'")
    assert run(dispatcher.drain_once()) == 50  # of the 51 due
    assert raw_times(db, "LeaseHasta")[1:51] == [None] * 50  # recorded: the lease is gone
    assert run(dispatcher.drain_once()) == 1
    assert run(dispatcher.drain_once()) == 0


def test_the_default_lease_is_thirty_seconds(migrated, dbx):
    db = migrated
    pending(db, [("wamid.A", TEL)])
    seen_lease = []

    class PeekingSender(RecordingSender):
        async def send(self, message):
            seen_lease.append(raw_times(db, "LeaseHasta")[0])
            return await super().send(message)

    dispatcher = Dispatcher(dbx, PeekingSender(), captured_telemetry()[0], clock=lambda: NOW)
    assert run(dispatcher.drain_once()) == 1
    assert seen_lease == [to_db(db.dialect, NOW + timedelta(seconds=30))]


class CountingExecutor(DbExecutor):
    """The real executor, noting which kind of call carried each piece of work (once it is done)."""

    def __init__(self, db):
        super().__init__(db, threads=2)
        self.calls: list[tuple[str, str]] = []

    async def transaction(self, fn, *args):
        try:
            return await super().transaction(fn, *args)
        finally:
            self.calls.append(("transaction", fn.__name__))

    async def single(self, fn, *args):
        try:
            return await super().single(fn, *args)
        finally:
            self.calls.append(("single", fn.__name__))


def test_results_are_recorded_together_in_one_transaction_on_sqlite_and_in_autocommit_elsewhere(migrated):
    db = migrated
    counting = CountingExecutor(db)
    try:
        pending(db, [("wamid.A", TEL), ("wamid.B", OTHER)])
        when = NOW + timedelta(milliseconds=250)
        dispatcher = Dispatcher(counting, RecordingSender(), captured_telemetry()[0], clock=lambda: when)
        assert run(dispatcher.drain_once()) == 2
        pending(db, [("wamid.D", TEL)])
        assert run(dispatcher.drain_once()) == 1
    finally:
        counting.close()
    grouped = "transaction" if db.dialect == "sqlite" else "single"
    assert counting.calls == [("transaction", "claim_batch"), (grouped, "record_results"),
                              ("transaction", "claim_batch"), ("single", "record_results")]
    assert [r[0] for r in results_columns(db)] == [outbox.DELIVERED] * 3
    assert raw_times(db, "FechaActualizacion") == [to_db(db.dialect, when)] * 3


def test_a_claim_leases_for_the_dispatchers_lease_and_a_sender_error_is_a_retry(migrated, dbx):
    """A sender that raises (the network) leaves the reply for a retry 2 s later, counted as an
    attempt, with the error's type and text; the claim had leased it for ``lease_seconds``."""
    db = migrated
    pending(db, [("wamid.A", TEL)])
    telemetry, capture = captured_telemetry()
    seen_lease = []

    class BrokenSender:
        async def send(self, message):
            seen_lease.append(raw_times(db, "LeaseHasta")[0])
            raise ConnectionError("conexión rechazada " + "z" * 300)

    dispatcher = Dispatcher(dbx, BrokenSender(), telemetry, lease_seconds=45.0, clock=lambda: NOW)
    assert run(dispatcher.drain_once()) == 1
    assert seen_lease == [to_db(db.dialect, NOW + timedelta(seconds=45))]
    (row,) = results_columns(db)
    assert row[:7] == (outbox.PENDING, None, 1, None, "ConnectionError", ("conexión rechazada " + "z" * 300)[:200],
                       NOW + timedelta(seconds=2))
    (failed,) = capture.events("outbox.failed")
    dims = failed.custom_dimensions
    assert (dims["outbox_id"], dims["attempt"], dims["error_code"]) == (1, 1, "ConnectionError")
    assert dims["telefono_hash"] and TEL not in str(dims)
    assert capture.events("outbox.sent") == []


def test_each_send_is_reported_but_a_throttled_one_never_left(migrated, dbx):
    db = migrated
    pending(db, [("wamid.A", TEL), ("wamid.B", OTHER)])
    telemetry, capture = captured_telemetry()
    sender = RecordingSender([SendResult(outbox.SENT, wamid="wamid.OUT1"),
                              SendResult(outbox.PENDING, error_code="throttled")])  # retry: the default 1 s
    dispatcher = Dispatcher(dbx, sender, telemetry, clock=lambda: NOW)
    assert run(dispatcher.drain_once()) == 2
    (sent,) = capture.events("outbox.sent")
    assert (sent.custom_dimensions["attempt"], sent.custom_dimensions["error_code"]) == (1, "")
    assert sent.custom_dimensions["telefono_hash"]
    assert capture.events("outbox.failed") == []
    assert [(r[0], r[2], r[6]) for r in results_columns(db)] == [(outbox.SENT, 1, None),
                                                                  (outbox.PENDING, 0, NOW + timedelta(seconds=1))]


def test_replies_behind_one_that_must_wait_wait_as_long_as_it(migrated, dbx):
    """Three replies to one recipient, the first told to retry in 5 s: the two behind it are held
    (not attempted) until the same time, and all three are recorded."""
    db = migrated
    pending(db, [("wamid.A", TEL), ("wamid.B", TEL), ("wamid.C", TEL)])
    sender = RecordingSender([SendResult(outbox.PENDING, retry_after_s=5.0, error_code="131000")])
    dispatcher = Dispatcher(dbx, sender, captured_telemetry()[0], clock=lambda: NOW)
    assert run(dispatcher.drain_once()) == 3
    assert sender.sent == [("wamid.A", TEL, 1)]
    retry = NOW + timedelta(seconds=5)
    assert [(r[0], r[2], r[4], r[6]) for r in results_columns(db)] == [
        (outbox.PENDING, 1, "131000", retry), (outbox.PENDING, 0, "held", retry), (outbox.PENDING, 0, "held", retry)]


def test_on_sql_server_replies_are_inserted_claimed_or_held_and_claims_are_bounded(recorded_mssql):
    """The mssql forms (one SELECT per row joined by UNION ALL with OUTPUT, TOP, table hints)
    against the SQL Server stand-in: the same rows and answers as on SQLite and PostgreSQL, and
    every statement passes the T-SQL linter."""
    from migrations.tsql_check import check_script

    db, backing = recorded_mssql
    ts, lease = NOW.replace(tzinfo=None), LEASE.replace(tzinfo=None)  # what to_db gives mssql
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            claimed = outbox.insert_replies(cur, "mssql", "wamid.A", TEL, (Reply("text", "uno"), Reply("text", "dos")),
                                            ts, lease, ("MX.1", None))
            held = outbox.insert_replies(cur, "mssql", "wamid.B", TEL, (Reply("text", "tres"),), ts, lease,
                                         (None, None))
            other = outbox.insert_replies(cur, "mssql", "wamid.C", OTHER, (Reply("text", "otro"),), ts, lease,
                                          (None, None))
    rows = outbox_rows(backing)
    assert [(m.outbox_id, m.sequence, m.text) for m in claimed] == [(rows[0]["id"], 1, "uno"), (rows[1]["id"], 2, "dos")]
    assert held == () and [m.message_id for m in other] == ["wamid.C"]
    assert [(r["origin"], r["state"], r["lease"], r["attempts"], r["user_id"]) for r in rows] == [
        ("wamid.A", outbox.SENDING, LEASE, 1, "MX.1"), ("wamid.A", outbox.SENDING, LEASE, 1, "MX.1"),
        ("wamid.B", outbox.PENDING, None, 0, None), ("wamid.C", outbox.SENDING, LEASE, 1, None)]
    later = LEASE + timedelta(seconds=1)  # every lease expired: A's replies come first, one at a time
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            first = outbox.claim_batch(cur, "mssql", later, later + timedelta(seconds=30), 1)
    assert [(m.message_id, m.sequence, m.attempts) for m in first] == [("wamid.A", 1, 2)]
    statements = db.recording.distinct()
    assert any(" UNION ALL " in s and "OUTPUT inserted.SalienteId" in s for s in statements)
    assert any(s.startswith("SELECT TOP (1) ") and "WITH (UPDLOCK, READPAST, ROWLOCK)" in s for s in statements)
    assert [f for i, s in enumerate(statements) for f in check_script(s, f"runtime-{i}")] == []
