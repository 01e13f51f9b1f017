"""The Graph API sender against a fake Graph API on loopback, through the real dispatcher and DB."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import outbox
from bot_core.dbexec import DbExecutor
from bot_core.graph_sender import GraphApiSender, message_payload
from bot_core.outbox import Dispatcher, OutboundMessage
from migrations.runner import MigrationRunner
from tests.conftest import captured_telemetry
from tests.support.fake_http import FakeGraph

TEL, OTHER = "5215550001111", "5215550002222"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def message(kind="text", options=(), attempts=1, tel=TEL, text="Hola"):
    return OutboundMessage(1, "wamid.IN", 1, tel, kind, text, tuple(options), attempts)


def sender(fake, telemetry=None, clock=None):
    telemetry = telemetry or captured_telemetry()[0]
    kwargs = {"clock": clock} if clock else {}
    return GraphApiSender(fake.url, "v21.0", "1234567890", "EAAG-token", telemetry, rng=lambda: 0.5, **kwargs)


def send(fake, msg, **kw):
    async def go():
        s = sender(fake, **kw)
        try:
            return await s.send(msg)
        finally:
            await s.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize("answer, state, retried", [
    ("ok", "ENVIADO", False),
    (131000, "PENDIENTE", True), (131016, "PENDIENTE", True), (133004, "PENDIENTE", True),
    (("http", 502), "PENDIENTE", True), ("close", "PENDIENTE", True),
    (131047, "FALLIDO", False), (131026, "FALLIDO", False), (131048, "FALLIDO", False),
    (131049, "FALLIDO", False), (100, "FALLIDO", False), (132000, "FALLIDO", False),
])
def test_each_error_class(answer, state, retried):
    with FakeGraph([answer]) as fake:
        result = send(fake, message())
        requests = list(fake.requests)
    assert result.state == state and len(requests) == 1
    assert (result.retry_after_s is not None) == retried
    if state == "ENVIADO":
        assert result.wamid == "wamid.OUT1"
    else:
        assert result.error_code == str(answer if isinstance(answer, int) else
                                        (answer[1] if isinstance(answer, tuple) else result.error_code))
    assert requests[0]["path"] == "/v21.0/1234567890/messages"
    assert requests[0]["headers"]["authorization"] == "Bearer EAAG-token"


def test_retries_give_up_after_the_maximum_attempts():
    with FakeGraph([131000]) as fake:
        assert send(fake, message(attempts=8)).state == "FALLIDO"


def test_throughput_limit_throttles_the_number_and_pair_limit_only_the_recipient():
    clock = [100.0]
    with FakeGraph([130429, 131056]) as fake:
        async def go():
            s = sender(fake, clock=lambda: clock[0])
            first = await s.send(message())                  # 130429: number throttled
            held = await s.send(message(tel=OTHER))          # not even sent
            clock[0] += first.retry_after_s + 0.01
            pair = await s.send(message())                   # 131056: this recipient held back
            other = await s.send(message(tel=OTHER))         # another recipient goes through
            same = await s.send(message())                   # the held recipient waits
            await s.aclose()
            return first, held, pair, other, same
        first, held, pair, other, same = asyncio.run(go())
        sent = len(fake.requests)
    assert first.state == held.state == pair.state == same.state == "PENDIENTE"
    assert held.error_code == "throttled" and same.error_code == "throttled"
    assert pair.error_code == "131056" and pair.retry_after_s > first.retry_after_s
    assert other.state == "ENVIADO"
    assert sent == 3  # the throttled ones never reached the API


def test_expired_token_raises_an_alert_and_keeps_the_message():
    telemetry, capture = captured_telemetry()
    with FakeGraph([190]) as fake:
        result = send(fake, message(), telemetry=telemetry)
    assert result.state == "PENDIENTE" and result.error_code == "190"
    (alert,) = capture.events("whatsapp.token_expired")
    assert alert.levelno >= 40 and "EAAG-token" not in alert.getMessage()


def test_payload_shapes():
    text = message_payload(message())
    assert text == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TEL, "type": "text",
                    "text": {"preview_url": False, "body": "Hola"}}
    buttons = message_payload(message("buttons", [("a", "Refrigerador"), ("b", "Vehículo")]))
    assert buttons["interactive"]["type"] == "button"
    assert buttons["interactive"]["action"]["buttons"][1] == {"type": "reply", "reply": {"id": "b", "title": "Vehículo"}}
    rows = message_payload(message("list", [(f"r{i}", f"Opción {i}") for i in range(10)]))
    assert rows["interactive"]["type"] == "list" and len(rows["interactive"]["action"]["sections"][0]["rows"]) == 10
    with FakeGraph() as fake:
        too_many = send(fake, message("buttons", [(str(i), "x") for i in range(4)]))
        assert too_many.state == "FALLIDO" and "at most 3" in too_many.error_detail and fake.requests == []


def _outbox_rows(db, rows):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.executemany("INSERT INTO MensajesSalientes (MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido, "
                            "Estado) VALUES (?, ?, ?, 'text', ?, 'PENDIENTE')",
                            [(origin, seq, tel, json.dumps({"text": f"respuesta {seq}", "options": []}))
                             for origin, seq, tel in rows])


def _states(db):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT MensajeOrigenId, Secuencia, Estado, WamidSaliente, CodigoError FROM MensajesSalientes "
                    "ORDER BY SalienteId")
        rows = [tuple(r) for r in cur.fetchall()]
        conn.rollback()
        return rows


def test_dispatcher_stores_wamids_keeps_order_per_recipient_and_statuses_only_move_forward(db):
    MigrationRunner(db).up()
    _outbox_rows(db, [("wamid.A", 1, TEL), ("wamid.A", 2, TEL), ("wamid.B", 1, OTHER)])
    telemetry, capture = captured_telemetry()
    # TEL's first reply hits a 5xx: its second must not overtake it; OTHER is unaffected.
    failed_once = []

    def first_reply_to_tel_fails(body):  # by recipient: the two groups are sent concurrently
        if body["to"] == TEL and not failed_once:
            failed_once.append(body)
            return 131000
        return "ok"

    with FakeGraph(default=first_reply_to_tel_fails) as fake:
        async def go():
            dbx = DbExecutor(db, threads=2)
            s = sender(fake, telemetry)
            d = Dispatcher(dbx, s, telemetry)
            first = await d.drain_once()
            after_first = _states(db)
            with db.connection() as conn:  # make the retry due now
                with db.transaction(conn) as cur:
                    cur.execute("UPDATE MensajesSalientes SET ProximoIntento = NULL")
            second = await d.drain_once()
            await s.aclose()
            dbx.close()
            return first, after_first, second
        first, after_first, second = asyncio.run(go())
        bodies = [r["json"]["to"] for r in fake.requests]
    assert first == 3 and second == 2
    assert after_first[0][2] == "PENDIENTE" and after_first[0][4] == "131000"
    assert after_first[1][2] == "PENDIENTE" and after_first[1][4] == "held"
    assert after_first[2][2] == "ENVIADO"
    final = _states(db)
    assert [r[2] for r in final] == ["ENVIADO"] * 3 and len({r[3] for r in final}) == 3
    assert bodies.count(TEL) == 3 and bodies.count(OTHER) == 1  # the held reply was sent once, after
    # Statuses: forward only.
    wamid = final[0][3]
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("SELECT WamidSaliente, Telefono FROM MensajesSalientes")
            to = dict(cur.fetchall())
            other = next(t for t in (TEL, OTHER) if t != to[wamid])
            # A status naming another recipient (forged, or a mix-up) changes nothing.
            assert not outbox.apply_status(cur, db.dialect, wamid, "read", NOW, recipient=other)
            assert not outbox.apply_status(cur, db.dialect, wamid, "read", NOW, recipient="")
            assert outbox.apply_status(cur, db.dialect, wamid, "read", NOW, recipient=to[wamid])
            assert not outbox.apply_status(cur, db.dialect, wamid, "delivered", NOW,  # late, older news
                                           recipient=to[wamid])
            assert not outbox.apply_status(cur, db.dialect, wamid, "sent", NOW, recipient=to[wamid])
            assert outbox.apply_status(cur, db.dialect, final[1][3], "failed", NOW, "131047", "Re-engagement",
                                       recipient=to[final[1][3]])
    states = _states(db)
    assert states[0][2] == "LEIDO" and states[1][2] == "FALLIDO" and states[1][4] == "131047"


def test_a_later_reply_waits_behind_an_earlier_one_still_due_for_retry(db):
    MigrationRunner(db).up()
    _outbox_rows(db, [("wamid.A", 1, TEL)])
    telemetry, _ = captured_telemetry()

    seen = []

    def first_fails(body):
        seen.append(body)
        return 131000 if len(seen) == 1 else "ok"

    with FakeGraph(default=first_fails) as fake:
        async def go():
            dbx = DbExecutor(db, threads=2)
            s = sender(fake, telemetry)
            d = Dispatcher(dbx, s, telemetry)
            await d.drain_once()                         # reply A1 fails: due again in ~1 s
            _outbox_rows(db, [("wamid.B", 1, TEL), ("wamid.C", 1, OTHER)])  # newer replies arrive
            second = await d.drain_once()                # B1 must not overtake A1; C1 (other phone) goes
            with db.connection() as conn:
                with db.transaction(conn) as cur:
                    cur.execute("UPDATE MensajesSalientes SET ProximoIntento = NULL")
            third = await d.drain_once()
            await s.aclose()
            dbx.close()
            return second, third
        second, third = asyncio.run(go())
        order = [(r["json"]["to"], r["json"]["text"]["body"]) for r in fake.requests]
    assert second == 1 and third == 2
    assert order == [(TEL, "respuesta 1"), (OTHER, "respuesta 1"), (TEL, "respuesta 1"), (TEL, "respuesta 1")]
    assert [r[2] for r in _states(db)] == ["ENVIADO"] * 3
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT MensajeOrigenId, Intentos FROM MensajesSalientes ORDER BY SalienteId")
        attempts = dict(cur.fetchall())
        conn.rollback()
    assert attempts == {"wamid.A": 2, "wamid.B": 1, "wamid.C": 1}


def _claim(db, now, limit=10):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            return [(m.message_id, m.telefono) for m in
                    outbox.claim_batch(cur, db.dialect, now, now + timedelta(seconds=30), limit)]


def _record_sent(db, origin, now):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE MensajesSalientes SET Estado = 'ENVIADO', LeaseHasta = NULL WHERE MensajeOrigenId = ?",
                        (origin,))


def test_a_later_reply_is_held_while_an_earlier_one_is_in_flight(db):
    """An earlier reply leased by a dispatcher (ENVIANDO, lease live) holds the same phone's later
    replies, whoever claims next: another dispatcher must not overtake it."""
    MigrationRunner(db).up()
    _outbox_rows(db, [("wamid.A", 1, TEL)])
    assert _claim(db, NOW) == [("wamid.A", TEL)]                      # A1 in flight until NOW + 30 s
    _outbox_rows(db, [("wamid.B", 1, TEL), ("wamid.C", 1, OTHER)])
    assert _claim(db, NOW + timedelta(seconds=1)) == [("wamid.C", OTHER)]   # B1 held behind A1
    _record_sent(db, "wamid.C", NOW)
    assert _claim(db, NOW + timedelta(seconds=29)) == []                    # still held: lease live
    # The sender died: once A1's lease expires it is claimed again, ahead of B1.
    assert _claim(db, NOW + timedelta(seconds=31), limit=1) == [("wamid.A", TEL)]
    assert _claim(db, NOW + timedelta(seconds=32)) == []                    # A1 in flight again
    _record_sent(db, "wamid.A", NOW)
    assert _claim(db, NOW + timedelta(seconds=33)) == [("wamid.B", TEL)]


def test_a_bsuid_recipient_goes_in_recipient_and_a_phone_in_to():
    """Meta's Cloud API: ``to`` takes a phone, ``recipient`` a BSUID (``to`` would win if both were sent)."""
    from bot_core.graph_sender import message_payload
    from bot_core.outbox import OutboundMessage

    by_bsuid = message_payload(OutboundMessage(1, "wamid.I", 1, "US.13491208655302741918", "text", "hola", (), 1))
    by_phone = message_payload(OutboundMessage(2, "wamid.I", 2, TEL, "text", "hola", (), 1))
    assert by_bsuid["recipient"] == "US.13491208655302741918" and "to" not in by_bsuid
    assert by_phone["to"] == TEL and "recipient" not in by_phone
