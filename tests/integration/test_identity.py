"""Who a user is (phone, BSUID or both) through the real commit, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import inbox
from bot_core.conversation import kinds
from bot_core.conversation import replies as r
from bot_core.dbexec import DbExecutor
from bot_core.demo import seed_demo_equipment
from bot_core.processing import Processor
from bot_core.webhook.payload import InboundMessage
from migrations.runner import MigrationRunner
from tests.conftest import captured_telemetry

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
TEL, NEW_TEL, OTHER_TEL = "5215550004444", "5215550005555", "5215550006666"
BSUID, NEW_BSUID, PARENT = "MX.1349120865530274", "MX.777000111222", "MX.ENT.11815799212886844830"
_ids = itertools.count(1)


@pytest.fixture
def bot(db):
    MigrationRunner(db).up()
    seed_demo_equipment(db)
    telemetry, capture = captured_telemetry()
    dbx = DbExecutor(db, threads=2)
    yield Bot(db, dbx, Processor(dbx, telemetry, supervisors=frozenset({"MX.999"})), capture)
    dbx.close()


class Bot:
    def __init__(self, db, dbx, processor, capture):
        self.db, self.dbx, self.processor, self.capture = db, dbx, processor, capture

    def send(self, text=None, *, telefono=None, user_id=None, parent=None, kind="text", reply_id=None,
             **extra) -> tuple[str, list[tuple[str, str]]]:
        """One message through ingest and the commit; returns its id and its replies (recipient, text)."""
        mid = f"wamid.ID{next(_ids)}"
        message = InboundMessage(mid, telefono, kind, NOW, text, reply_id, kind, None, (), user_id, parent, **extra)
        self.dbx.run_transaction(lambda cur: inbox.register_inbound(cur, self.db.dialect, message, NOW,
                                                                    NOW + timedelta(seconds=30)))
        outcome = asyncio.run(self.processor.process(message))
        assert outcome.status == "processed", outcome
        rows = self.query("SELECT Telefono, Contenido FROM MensajesSalientes WHERE MensajeOrigenId = ? "
                          "ORDER BY Secuencia", (mid,))
        return mid, [(to, json.loads(content)["text"]) for to, content in rows]

    def query(self, sql, params=()):
        with self.db.connection() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = cur.fetchall()
            conn.rollback()
        return [tuple(row) for row in rows]

    def session(self, key):
        rows = self.query("SELECT Estado, UsuarioId FROM SesionesChat WHERE Telefono = ?", (key,))
        return rows[0] if rows else None


def test_a_user_without_a_phone_reports_and_is_answered_at_the_bsuid(bot):
    _, replies = bot.send("refri", user_id=BSUID, parent=PARENT)
    assert [to for to, _ in replies] == [BSUID]
    bot.send("4001234", user_id=BSUID)
    bot.send("no enfría nada", user_id=BSUID)
    _, replies = bot.send("sí", user_id=BSUID)
    assert "quedó registrado" in replies[0][1]
    assert bot.query("SELECT Telefono, UsuarioId, UsuarioIdPadre FROM Reportes") == [(BSUID, BSUID, PARENT)]
    assert bot.query("SELECT ClaveUsuario, Telefono, UsuarioId FROM Usuarios") == [(BSUID, None, BSUID)]
    assert bot.query("SELECT COUNT(*) FROM MensajesProcesados WHERE Telefono IS NULL AND UsuarioId = ?",
                     (BSUID,)) == [(4,)]


def test_a_phone_user_who_later_has_a_bsuid_keeps_session_history_and_reports(bot):
    bot.send("refri", telefono=TEL)
    bot.send("4001234", telefono=TEL, user_id=BSUID)  # Meta starts sending the BSUID too
    _, replies = bot.send("no enfría", user_id=BSUID)  # then the user adopts a username: no phone
    assert bot.session(TEL) == ("REFRI_CONFIRMAR", BSUID)
    assert replies[0][0] == TEL  # the phone is still known: replies keep going to it
    bot.send("sí", user_id=BSUID)
    assert bot.query("SELECT COUNT(*) FROM SesionesChat") == [(1,)]
    assert bot.query("SELECT Telefono FROM Reportes") == [(TEL,)]
    assert {row[0] for row in bot.query("SELECT DISTINCT Telefono FROM MensajesChat")} == {TEL}


def test_a_number_change_moves_the_session_and_replies_go_to_the_new_number(bot):
    bot.send("vehiculo", telefono=TEL, user_id=BSUID)
    bot.send("12345", telefono=TEL, user_id=BSUID)
    _, replies = bot.send("User A changed from 1 to 2", telefono=TEL, user_id=BSUID, kind="system",
                          new_telefono=NEW_TEL, new_user_id=NEW_BSUID)
    assert replies == []  # a system event is not a request: no billable reply, least of all to the old number
    _, replies = bot.send("ABC-123-D", telefono=NEW_TEL, user_id=NEW_BSUID)
    assert bot.session(BSUID)[0] == "VEHICULO_ESPERA_PROBLEMA"  # the key of the user, kept
    assert [to for to, _ in replies] == [NEW_TEL]
    assert bot.query("SELECT Telefono, UsuarioId FROM Usuarios") == [(NEW_TEL, NEW_BSUID)]


def test_a_recycled_number_with_another_bsuid_is_another_user(bot):
    bot.send("refri", telefono=TEL, user_id=BSUID)
    _, replies = bot.send("hola", telefono=TEL, user_id=NEW_BSUID)
    assert bot.session(NEW_BSUID) == ("INICIO", NEW_BSUID) and bot.session(BSUID)[0] == "REFRI_ESPERA_SAP"
    assert sorted(bot.query("SELECT ClaveUsuario, Telefono FROM Usuarios")) == [(BSUID, None), (NEW_BSUID, TEL)]


@pytest.mark.parametrize("kind, text, extra", [
    ("reaction", "👍", {"ref_id": "wamid.X"}), ("reaction", None, {"ref_id": "wamid.X"}),
    ("revoke", None, {"ref_id": "wamid.X"}), ("system", "identity changed", {}),
    ("edit", "otra cosa", {"ref_id": "wamid.NOT-THE-LAST"}),
])
def test_events_are_recorded_once_and_answered_with_nothing(bot, kind, text, extra):
    bot.send("refri", telefono=TEL)
    before = bot.query("SELECT Estado, Version, UltimaActividad FROM SesionesChat")
    mid, replies = bot.send(text, telefono=TEL, kind=kind, **extra)
    assert replies == [] and bot.query("SELECT Estado, Version, UltimaActividad FROM SesionesChat") == before
    assert bot.query("SELECT COUNT(*) FROM MensajesChat WHERE MensajeId = ?", (mid,)) == [(1,)]
    assert bot.query("SELECT Estado FROM MensajesProcesados WHERE MensajeId = ?", (mid,)) == [("PROCESADO",)]
    dims = [e.custom_dimensions for e in bot.capture.events("message.processed")]
    assert [d["message_type"] for d in dims if d["message_id"] == mid] == [kind]


def test_an_edit_of_the_last_message_is_read_as_the_new_text(bot):
    bot.send("refri", telefono=TEL)
    typo, replies = bot.send("400123", telefono=TEL)
    _, replies = bot.send("4001234", telefono=TEL, kind="edit", ref_id=typo)
    assert bot.session(TEL)[0] == "REFRI_ESPERA_PROBLEMA" and len(replies) == 1


@pytest.mark.parametrize("kind", sorted(k for k, b in kinds.BEHAVIOUR.items() if b == kinds.ANSWER))
def test_what_cannot_be_read_gets_its_own_reply(bot, kind):
    _, replies = bot.send(None, user_id=BSUID, kind=kind)
    assert len(replies) == 1 and kinds.ANSWER_NOTES[kind] in replies[0][1]


def test_a_ticket_is_shown_only_to_its_reporter_and_to_supervisors(bot):
    for text in ("refri", "4001234", "no enfría", "sí"):
        _, replies = bot.send(text, user_id=BSUID)
    ticket = bot.query("SELECT NumeroTicket FROM Reportes")[0][0]
    _, own = bot.send(f"estado {ticket}", user_id=BSUID)
    _, other = bot.send(f"estado {ticket}", telefono=OTHER_TEL)
    _, boss = bot.send(f"estado {ticket}", user_id="MX.999")
    _, missing = bot.send("estado REF-20260101-DEADBEEF", telefono=OTHER_TEL)
    assert "pendiente" in own[0][1] and "pendiente" in boss[0][1]
    assert other[0][1] == missing[0][1].replace("REF-20260101-DEADBEEF", ticket)
    assert r.UNKNOWN_TICKET.format(ticket=ticket) in other[0][1]


def test_the_short_ticket_form_finds_the_users_own_ticket(bot):
    for text in ("refri", "4001234", "no enfría", "sí"):
        bot.send(text, telefono=TEL)
    ticket = bot.query("SELECT NumeroTicket FROM Reportes")[0][0]
    _, replies = bot.send(f"estado {ticket[-8:].lower()}", telefono=TEL)
    assert ticket in replies[0][1] and "pendiente" in replies[0][1]
    _, replies = bot.send(f"estado {ticket[-8:]}", telefono=OTHER_TEL)
    assert r.UNKNOWN_TICKET.format(ticket=ticket[-8:]) in replies[0][1]
