"""The inbox: ``MensajesProcesados`` registers every inbound message id exactly once.

``register_inbound`` is the phase-1 fix 1.2 done atomically: a new id is
inserted (Reintentos = 0), a seen id gets Reintentos + 1 and UltimoReintento,
and the caller learns ``(is_duplicate, retry_count)`` from the same statement.
Rows then move PENDIENTE -> PROCESANDO (leased) -> PROCESADO, or FALLIDO after
too many attempts; a row whose lease expired is claimable again (the sweeper).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot_core.sqltime import to_db
from bot_core.webhook.payload import InboundMessage

PENDING, PROCESSING, PROCESSED, FAILED = "PENDIENTE", "PROCESANDO", "PROCESADO", "FALLIDO"

_UPSERT = """INSERT INTO MensajesProcesados
    (MensajeId, Telefono, Estado, Payload, LeaseHasta, FechaCreacion, Reintentos, Intentos, UsuarioId, UsuarioIdPadre)
VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
ON CONFLICT (MensajeId) DO UPDATE SET
    Reintentos = MensajesProcesados.Reintentos + 1,
    UltimoReintento = excluded.FechaCreacion
RETURNING Reintentos"""

# Without HOLDLOCK two concurrent MERGEs of a new id both see "not matched" and
# race into a primary-key violation; HOLDLOCK takes the key-range lock first.
_MERGE = """MERGE dbo.MensajesProcesados WITH (HOLDLOCK) AS t
USING (SELECT ? AS MensajeId) AS s
ON t.MensajeId = s.MensajeId
WHEN MATCHED THEN
    UPDATE SET Reintentos = t.Reintentos + 1, UltimoReintento = ?
WHEN NOT MATCHED THEN
    INSERT (MensajeId, Telefono, Estado, Payload, LeaseHasta, FechaCreacion, Reintentos, Intentos, UsuarioId,
            UsuarioIdPadre)
    VALUES (s.MensajeId, ?, ?, ?, ?, ?, 0, ?, ?, ?)
OUTPUT inserted.Reintentos;"""


@dataclass(frozen=True)
class Registration:
    """What recording an inbound message found: new, or a duplicate of one already stored."""

    message_id: str
    is_duplicate: bool
    retry_count: int


def register_inbound(cur: Any, dialect: str, message: InboundMessage, now: datetime,
                     lease_until: datetime | None) -> Registration:
    """Record ``message`` in the inbox, atomically. With ``lease_until`` the caller
    also claims it for processing right away (inline mode)."""
    state = PROCESSING if lease_until is not None else PENDING
    payload = json.dumps(message.to_json(), ensure_ascii=False)
    attempts = 1 if lease_until is not None else 0
    ts, lease = to_db(dialect, now), to_db(dialect, lease_until)
    # The inbox records the sender as the message names it: its phone (if any) and its BSUID.
    ids = (message.user_id, message.parent_user_id)
    if dialect == "mssql":
        cur.execute(_MERGE, (message.message_id, ts, message.telefono, state, payload, lease, ts, attempts, *ids))
    else:
        cur.execute(_UPSERT, (message.message_id, message.telefono, state, payload, lease, ts, attempts, *ids))
    retry_count = int(cur.fetchone()[0])
    return Registration(message.message_id, retry_count > 0, retry_count)


def claim_message(cur: Any, dialect: str, message_id: str, now: datetime, lease_until: datetime) -> bool:
    """Take the lease on one row if it is pending or its lease expired."""
    cur.execute(
        "UPDATE MensajesProcesados SET Estado = ?, LeaseHasta = ?, Intentos = Intentos + 1 "
        "WHERE MensajeId = ? AND (Estado = ? OR (Estado = ? AND LeaseHasta < ?))",
        (PROCESSING, to_db(dialect, lease_until), message_id, PENDING, PROCESSING, to_db(dialect, now)))
    return cur.rowcount == 1


def claimable_ids(cur: Any, dialect: str, now: datetime, limit: int) -> list[str]:
    """Ids of rows waiting for a processor: pending, or leased by one that died."""
    top = f"TOP ({int(limit)}) " if dialect == "mssql" else ""
    tail = "" if dialect == "mssql" else f" LIMIT {int(limit)}"
    cur.execute(
        f"SELECT {top}MensajeId FROM MensajesProcesados "
        "WHERE Estado = ? OR (Estado = ? AND LeaseHasta < ?) ORDER BY FechaCreacion" + tail,
        (PENDING, PROCESSING, to_db(dialect, now)))
    return [row[0] for row in cur.fetchall()]


def load_payload(cur: Any, message_id: str) -> tuple[InboundMessage, int] | None:
    cur.execute("SELECT Payload, Intentos FROM MensajesProcesados WHERE MensajeId = ?", (message_id,))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    return InboundMessage.from_json(json.loads(row[0])), int(row[1])


def mark_processed(cur: Any, dialect: str, message_id: str, now: datetime) -> bool:
    """The first write of the commit: only one processor can move a row to PROCESADO."""
    cur.execute(
        "UPDATE MensajesProcesados SET Estado = ?, ProcesadoEn = ?, LeaseHasta = NULL, UltimoError = NULL "
        "WHERE MensajeId = ? AND Estado = ?",
        (PROCESSED, to_db(dialect, now), message_id, PROCESSING))
    return cur.rowcount == 1


def release(cur: Any, message_id: str, error: str, give_up: bool = False) -> None:
    """Hand the row back (PENDIENTE) after a failure, or park it as FALLIDO."""
    cur.execute(
        "UPDATE MensajesProcesados SET Estado = ?, LeaseHasta = NULL, UltimoError = ? "
        "WHERE MensajeId = ? AND Estado = ?",
        (FAILED if give_up else PENDING, error[:400], message_id, PROCESSING))
