"""Inbox registration, optimistic locking and commit atomicity on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import inbox
from bot_core.conversation.model import Session, Transition, Reply
from bot_core.errors import ConcurrencyError
from bot_core.sessions import load_session, save_session
from bot_core.sqltime import from_db, to_db
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
    datos, equipo, count, user_id, parent, stored_at = _row(db, tel)
    assert "ñ" in datos and (equipo, count, user_id, parent) == (7, 1, "MX.123", "MX.PARENT")
    assert stored_at == to_db(db.dialect, NOW)  # the schema's one format (on SQLite, text with milliseconds)
    # No data is stored as NULL; a later message without an identity keeps the known user id.
    later = NOW + timedelta(minutes=1)
    empty = Transition("REFRI_ESPERA_PROBLEMA", "INICIO", {}, None, (Reply("text", "Listo"),), (), "fin", "BOT")
    assert _save(db, stored, True, empty, later) == 2
    datos, equipo, count, user_id, parent, stored_at = _row(db, tel)
    assert (datos, equipo, count, user_id, parent) == (None, None, 2, "MX.123", "MX.PARENT")
    assert stored_at == to_db(db.dialect, later)
    again = _load(db, tel)
    assert (dict(again.datos), again.version, again.ultima_actividad) == ({}, 2, later)


@pytest.mark.parametrize("stored, estado", [("not json", "REFRI_ESPERA_SAP"), ('["a list"]', "REFRI_ESPERA_SAP"),
                                            ('{"k": 1}', "GONE_STATE")])
def test_a_hand_edited_session_starts_its_data_or_state_afresh(migrated, stored, estado):
    db, tel = migrated, "5215550000011"
    _save(db, Session.new(tel), False, _transition(), NOW)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("UPDATE SesionesChat SET DatosTemp = ?, Estado = ?, ContadorMensajes = 7 WHERE Telefono = ?",
                        (stored, estado, tel))
    session = _load(db, tel)
    expected = {"k": 1} if stored.startswith("{") else {}
    assert dict(session.datos) == expected and session.estado == ("INICIO" if estado == "GONE_STATE" else estado)
    assert (session.contador_mensajes, session.version) == (7, 1)  # the rest of the row is read as it is


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


def _inbox_row(db, message_id):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado, Intentos, LeaseHasta, FechaCreacion, Reintentos, UltimoReintento, UsuarioId, "
                    "UsuarioIdPadre, Payload, ProcesadoEn, UltimoError FROM MensajesProcesados WHERE MensajeId = ?",
                    (message_id,))
        row = cur.fetchone()
        conn.rollback()
    state, attempts, lease, created, retries, retried, user_id, parent, payload, processed, error = row
    return {"state": state, "attempts": int(attempts), "lease": from_db(lease), "created": from_db(created),
            "retries": int(retries), "retried": from_db(retried), "ids": (user_id, parent), "payload": payload,
            "processed": from_db(processed), "error": error}


def _stored(db, message_id, column):
    """A time column as stored: the format the lease comparisons rely on (text on SQLite)."""
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT {column} FROM MensajesProcesados WHERE MensajeId = ?", (message_id,))
        value = cur.fetchone()[0]
        conn.rollback()
    return value


def test_registration_records_state_lease_attempts_and_the_sender_ids(migrated):
    """Inline (with a lease) the row starts claimed, one attempt; queued it starts pending, none.
    A redelivery only counts a retry and its time: it claims nothing and changes no state."""
    db = migrated
    lease, later = NOW + timedelta(seconds=30), NOW + timedelta(minutes=5)
    by_bsuid = InboundMessage("wamid.T-bsuid", "5215550000001", "text", NOW, text="mañana sí", user_id="MX.123",
                              parent_user_id="MX.PARENT")
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            inbox.register_inbound(cur, db.dialect, by_bsuid, NOW, lease)
            inbox.register_inbound(cur, db.dialect, message("queued"), NOW, None)
    inline = _inbox_row(db, "wamid.T-bsuid")
    assert (inline["state"], inline["attempts"], inline["lease"], inline["created"]) == (
        inbox.PROCESSING, 1, lease, NOW)
    assert (inline["retries"], inline["retried"], inline["ids"]) == (0, None, ("MX.123", "MX.PARENT"))
    assert "mañana sí" in inline["payload"]  # stored readable (ensure_ascii=False), not as \u escapes
    assert [_stored(db, "wamid.T-bsuid", c) for c in ("FechaCreacion", "LeaseHasta")] == [
        to_db(db.dialect, NOW), to_db(db.dialect, lease)]
    queued = _inbox_row(db, "wamid.Tqueued")
    assert (queued["state"], queued["attempts"], queued["lease"], queued["ids"]) == (inbox.PENDING, 0, None,
                                                                                       (None, None))
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            again = inbox.register_inbound(cur, db.dialect, by_bsuid, later, None)
    assert again == inbox.Registration("wamid.T-bsuid", True, 1)
    redelivered = _inbox_row(db, "wamid.T-bsuid")
    assert (redelivered["retries"], redelivered["retried"]) == (1, later)
    assert _stored(db, "wamid.T-bsuid", "UltimoReintento") == to_db(db.dialect, later)
    assert {k: v for k, v in redelivered.items() if k not in ("retries", "retried")} == \
        {k: v for k, v in inline.items() if k not in ("retries", "retried")}


def test_claimable_ids_come_oldest_first_up_to_the_limit_and_a_lease_holds_until_it_ends(migrated):
    db = migrated
    lease = NOW + timedelta(seconds=30, milliseconds=500)  # milliseconds: the stored format matters
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            # Written newest first: the order must come from FechaCreacion, not from the ids.
            for i, age in ((1, 0), (2, 10), (3, 20)):
                inbox.register_inbound(cur, db.dialect, message(i), NOW - timedelta(seconds=age), None)
            inbox.register_inbound(cur, db.dialect, message(4), NOW - timedelta(seconds=30), lease)
            inbox.register_inbound(cur, db.dialect, message(5), NOW, None)
            cur.execute("UPDATE MensajesProcesados SET Estado = ? WHERE MensajeId = ?", (inbox.PROCESSED, "wamid.T5"))
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            assert inbox.claimable_ids(cur, db.dialect, NOW, 10) == ["wamid.T3", "wamid.T2", "wamid.T1"]
            assert inbox.claimable_ids(cur, db.dialect, NOW, 2) == ["wamid.T3", "wamid.T2"]
            # A lease that ends exactly now is still live; a moment later its row is claimable again.
            assert inbox.claimable_ids(cur, db.dialect, lease, 10) == ["wamid.T3", "wamid.T2", "wamid.T1"]
            assert not inbox.claim_message(cur, db.dialect, "wamid.T4", lease, lease + timedelta(seconds=30))
            after = lease + timedelta(milliseconds=1)
            assert inbox.claimable_ids(cur, db.dialect, after, 10) == ["wamid.T4", "wamid.T3", "wamid.T2", "wamid.T1"]
            assert inbox.claim_message(cur, db.dialect, "wamid.T4", after, after + timedelta(seconds=30))
            assert not inbox.claim_message(cur, db.dialect, "wamid.T5", after, after + timedelta(seconds=30))
    taken = _inbox_row(db, "wamid.T4")
    assert (taken["state"], taken["attempts"], taken["lease"]) == (inbox.PROCESSING, 2, after + timedelta(seconds=30))
    assert _stored(db, "wamid.T4", "LeaseHasta") == to_db(db.dialect, after + timedelta(seconds=30))
    assert _inbox_row(db, "wamid.T5")["attempts"] == 0  # a processed row is never claimed


def test_release_hands_back_or_parks_and_processing_clears_the_error(migrated):
    db = migrated
    lease = NOW + timedelta(seconds=30)
    register(db, message(1), lease=lease)
    register(db, message(2), lease=lease)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            inbox.release(cur, "wamid.T1", "TimeoutError: " + "x" * 500)
            inbox.release(cur, "wamid.T2", "gave up after 5 attempts", give_up=True)
    handed_back, parked = _inbox_row(db, "wamid.T1"), _inbox_row(db, "wamid.T2")
    assert (handed_back["state"], handed_back["lease"], handed_back["error"]) == (
        inbox.PENDING, None, ("TimeoutError: " + "x" * 500)[:400])
    assert (parked["state"], parked["lease"], parked["error"]) == (inbox.FAILED, None, "gave up after 5 attempts")
    later = NOW + timedelta(minutes=1)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            # Only a row being processed is released or marked processed.
            inbox.release(cur, "wamid.T1", "released twice")
            assert not inbox.mark_processed(cur, db.dialect, "wamid.T1", later)
            assert inbox.claim_message(cur, db.dialect, "wamid.T1", later, later + timedelta(seconds=30))
            assert inbox.mark_processed(cur, db.dialect, "wamid.T1", later)
            inbox.release(cur, "wamid.T1", "released after processing")
    done = _inbox_row(db, "wamid.T1")
    assert (done["state"], done["processed"], done["lease"], done["error"], done["attempts"]) == (
        inbox.PROCESSED, later, None, None, 2)
    assert _stored(db, "wamid.T1", "ProcesadoEn") == to_db(db.dialect, later)


def test_load_payload_returns_the_message_and_its_attempts_or_none(migrated):
    db = migrated
    register(db, message(1), lease=NOW + timedelta(seconds=30))
    register(db, message(2))
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            # A row written before the inbox had payloads (migration 003) has none to process.
            cur.execute("UPDATE MensajesProcesados SET Payload = NULL WHERE MensajeId = ?", ("wamid.T2",))
            assert inbox.load_payload(cur, "wamid.T1") == (message(1), 1)
            assert inbox.load_payload(cur, "wamid.T2") is None
            assert inbox.load_payload(cur, "wamid.T-unknown") is None


def test_only_a_key_conflict_is_a_concurrency_error(db):
    """Any other failure of a first message's INSERT (here: a database never migrated) is raised as
    it is, not retried as if another writer had won."""
    with pytest.raises(Exception) as err:
        _save(db, Session.new("5215550000013"), False, _transition(), NOW)
    assert not isinstance(err.value, ConcurrencyError) and "sesioneschat" in str(err.value).lower()


def test_on_sql_server_registration_is_one_merge_and_the_sweep_is_bounded_oldest_first(recorded_mssql):
    """The mssql forms (MERGE with OUTPUT, TOP) against the SQL Server stand-in: the same rows and
    answers as on SQLite and PostgreSQL, and every statement passes the T-SQL linter."""
    from migrations.tsql_check import check_script

    db, backing = recorded_mssql
    lease = NOW + timedelta(seconds=30)
    with_ids = InboundMessage("wamid.T2", "5215550000002", "text", NOW, text="sí", user_id="MX.2",
                              parent_user_id="MX.P")
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            first = inbox.register_inbound(cur, "mssql", message(1), NOW - timedelta(seconds=10), None)
            inbox.register_inbound(cur, "mssql", with_ids, NOW - timedelta(seconds=20), lease)
            inbox.register_inbound(cur, "mssql", message(3), NOW - timedelta(seconds=30), None)
            again = inbox.register_inbound(cur, "mssql", message(1), NOW, None)
            oldest = inbox.claimable_ids(cur, "mssql", NOW, 1)
            waiting = inbox.claimable_ids(cur, "mssql", NOW, 10)
    assert (first, again) == (inbox.Registration("wamid.T1", False, 0), inbox.Registration("wamid.T1", True, 1))
    assert (oldest, waiting) == (["wamid.T3"], ["wamid.T3", "wamid.T1"])  # T2 is leased
    row = _inbox_row(backing, "wamid.T2")
    assert (row["state"], row["attempts"], row["lease"], row["ids"], row["retries"]) == (
        inbox.PROCESSING, 1, lease, ("MX.2", "MX.P"), 0)
    assert _inbox_row(backing, "wamid.T1")["retried"] == NOW
    statements = db.recording.distinct()
    assert any(s.startswith("MERGE dbo.MensajesProcesados WITH (HOLDLOCK)") for s in statements)
    assert any("TOP (1)" in s for s in statements)
    assert [f for i, s in enumerate(statements) for f in check_script(s, f"runtime-{i}")] == []
