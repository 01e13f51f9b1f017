"""Inbox registration, optimistic locking and commit atomicity on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import inbox
from bot_core.conversation.model import Session, Transition, Reply
from bot_core.errors import ConcurrencyError
from bot_core.sessions import load_session, save_session
from bot_core.webhook.payload import InboundMessage
from migrations.runner import MigrationRunner

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def migrated(db):
    MigrationRunner(db).up()
    return db


def message(i: int | str = 1, telefono: str = "5215550000001") -> InboundMessage:
    return InboundMessage(f"wamid.T{i}", telefono, "text", NOW, text="hola")


def register(db, msg, lease=None):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            return inbox.register_inbound(cur, db.dialect, msg, NOW, lease)


def test_register_inbound_new_then_duplicates_count_retries(migrated):
    db = migrated
    first = register(db, message())
    assert (first.is_duplicate, first.retry_count) == (False, 0)
    assert [(r.is_duplicate, r.retry_count) for r in (register(db, message()), register(db, message()))] == \
        [(True, 1), (True, 2)]
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Reintentos, UltimoReintento, Telefono, Estado FROM MensajesProcesados")
        rows = cur.fetchall()
        conn.rollback()
    assert len(rows) == 1 and rows[0][0] == 2 and rows[0][1] is not None and rows[0][2] == "5215550000001"
    assert rows[0][3] == inbox.PENDING


def test_concurrent_registration_of_one_id_has_exactly_one_winner(migrated):
    db = migrated
    results, barrier = [], threading.Barrier(8)

    def go():
        barrier.wait()
        results.append(register(db, message("race")))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.retry_count for r in results) == list(range(8))
    assert sum(not r.is_duplicate for r in results) == 1


def test_claims_and_the_lease(migrated):
    db = migrated
    register(db, message(1))
    register(db, message(2), lease=NOW + timedelta(seconds=30))  # claimed inline
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert inbox.claimable_ids(cur, db.dialect, NOW, 10) == ["wamid.T1"]
            assert inbox.claimable_ids(cur, db.dialect, NOW + timedelta(seconds=31), 10) == ["wamid.T1", "wamid.T2"]
            assert inbox.claim_message(cur, db.dialect, "wamid.T1", NOW, NOW + timedelta(seconds=30))
            assert not inbox.claim_message(cur, db.dialect, "wamid.T1", NOW, NOW + timedelta(seconds=30))
            assert inbox.mark_processed(cur, db.dialect, "wamid.T1", NOW)
            assert not inbox.mark_processed(cur, db.dialect, "wamid.T1", NOW)  # only once
            assert inbox.load_payload(cur, "wamid.T2")[0] == message(2)


def _transition(state="REFRI_ESPERA_SAP"):
    return Transition("INICIO", state, {"flujo": "refri"}, None, (Reply("text", "¿Código SAP?"),), (), "pregunta SAP",
                      "BOT")


def test_conditional_session_update_raises_concurrency_error(migrated):
    db = migrated
    tel = "5215550000009"
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert save_session(cur, db.dialect, Session.new(tel), False, _transition(), NOW) == 1
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            stored = load_session(cur, tel)
    assert (stored.estado, stored.version, dict(stored.datos)) == ("REFRI_ESPERA_SAP", 1, {"flujo": "refri"})
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert save_session(cur, db.dialect, stored, True, _transition("REFRI_ESPERA_PROBLEMA"), NOW) == 2
    with db.connection() as conn:  # a writer still holding version 1 loses
        with pytest.raises(ConcurrencyError) as err:
            with db.transaction(conn) as cur:
                save_session(cur, db.dialect, stored, True, _transition("INICIO"), NOW)
    assert err.value.expected_version == 1
    with db.connection() as conn:  # a second "first message" of the same phone loses too
        with pytest.raises(ConcurrencyError):
            with db.transaction(conn) as cur:
                save_session(cur, db.dialect, Session.new(tel), False, _transition(), NOW)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert load_session(cur, tel).estado == "REFRI_ESPERA_PROBLEMA"


def test_the_same_id_twice_in_one_transaction_is_registered_once(migrated):
    """One delivery may carry a message twice: the second copy is a duplicate, not new work."""
    db = migrated
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            regs = [inbox.register_inbound(cur, db.dialect, message("twice"), NOW, None) for _ in range(2)]
    assert [(r.is_duplicate, r.retry_count) for r in regs] == [(False, 0), (True, 1)]


def _row(db, tel):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT DatosTemp, EquipoIdTemp, ContadorMensajes, UsuarioId, UsuarioIdPadre, UltimaActividad "
                    "FROM SesionesChat WHERE Telefono = ?", (tel,))
        row = tuple(cur.fetchone())
        conn.rollback()
    return row


def _save(db, *args, **kwargs):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            return save_session(cur, db.dialect, *args, **kwargs)


def _load(db, tel):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            return load_session(cur, tel)


def test_a_session_round_trips_every_column(migrated):
    from bot_core.identity import Identity

    db, tel = migrated, "5215550000010"
    with_equipo = Transition("REFRI_ESPERA_SAP", "REFRI_ESPERA_PROBLEMA", {"codigo_sap": "4001234", "ñ": "sí"}, 7,
                             (Reply("text", "¿Qué falla?"),), (), "SAP válido", "BOT")
    user = Identity(tel, tel, "MX.123", "MX.PARENT")
    assert _save(db, Session.new(tel), False, with_equipo, NOW, user) == 1
    stored = _load(db, tel)
    assert (stored.estado, dict(stored.datos), stored.equipo_id_temp, stored.contador_mensajes, stored.version) == (
        "REFRI_ESPERA_PROBLEMA", {"codigo_sap": "4001234", "ñ": "sí"}, 7, 1, 1)
    assert stored.ultima_actividad == NOW
    datos, equipo, count, user_id, parent, _ = _row(db, tel)
    assert "ñ" in datos and (equipo, count, user_id, parent) == (7, 1, "MX.123", "MX.PARENT")
    # No data is stored as NULL; a later message without an identity keeps the known user id.
    later = NOW + timedelta(minutes=1)
    empty = Transition("REFRI_ESPERA_PROBLEMA", "INICIO", {}, None, (Reply("text", "Listo"),), (), "fin", "BOT")
    assert _save(db, stored, True, empty, later) == 2
    datos, equipo, count, user_id, parent, _ = _row(db, tel)
    assert (datos, equipo, count, user_id, parent) == (None, None, 2, "MX.123", "MX.PARENT")
    again = _load(db, tel)
    assert (dict(again.datos), again.version, again.ultima_actividad) == ({}, 2, later)


@pytest.mark.parametrize("stored, estado", [("not json", "REFRI_ESPERA_SAP"), ('["a list"]', "REFRI_ESPERA_SAP"),
                                            ('{"k": 1}', "GONE_STATE")])
def test_a_hand_edited_session_starts_its_data_or_state_afresh(migrated, stored, estado):
    db, tel = migrated, "5215550000011"
    _save(db, Session.new(tel), False, _transition(), NOW)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE SesionesChat SET DatosTemp = ?, Estado = ? WHERE Telefono = ?", (stored, estado, tel))
    session = _load(db, tel)
    expected = {"k": 1} if stored.startswith("{") else {}
    assert dict(session.datos) == expected and session.estado == ("INICIO" if estado == "GONE_STATE" else estado)


def test_the_conflict_names_the_operation(migrated):
    db, tel = migrated, "5215550000012"
    _save(db, Session.new(tel), False, _transition(), NOW)
    stale = _load(db, tel)
    _save(db, stale, True, _transition("REFRI_ESPERA_PROBLEMA"), NOW)
    with pytest.raises(ConcurrencyError) as err:
        _save(db, stale, True, _transition("INICIO"), NOW)
    assert (err.value.operation, err.value.expected_version) == ("save_session", 1)
    with pytest.raises(ConcurrencyError) as err:
        _save(db, Session.new(tel), False, _transition(), NOW)
    assert (err.value.operation, err.value.expected_version) == ("save_session", 0)
