"""``SesionesChat`` with optimistic locking (phase-1 fix 1.1).

Every write is conditional on the version read: ``UPDATE … WHERE Telefono = ?
AND Version = ?``. Zero rows means someone else wrote first: ConcurrencyError,
which the caller retries from a fresh read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot_core.conversation.model import INICIO, STATES, Session, Transition
from bot_core.errors import ConcurrencyError, is_unique_violation
from bot_core.identity import Identity
from bot_core.sqltime import from_db, to_db


SESSION_COLUMNS = ("Estado", "DatosTemp", "EquipoIdTemp", "ContadorMensajes", "Version", "UltimaActividad")


def load_session(cur: Any, telefono: str) -> Session | None:
    cur.execute(f"SELECT {', '.join(SESSION_COLUMNS)} FROM SesionesChat WHERE Telefono = ?", (telefono,))
    return session_from_row(telefono, cur.fetchone())


def session_from_row(telefono: str, row: Any) -> Session | None:
    """The session of a row of ``SESSION_COLUMNS`` (None: no row)."""
    if row is None:
        return None
    try:
        datos = json.loads(row[1]) if row[1] else {}
    except ValueError:
        datos = {}  # a hand-edited or legacy value: start the flow's data afresh
    # A state this version does not know (older code, a hand edit) starts over.
    estado = row[0] if row[0] in STATES else INICIO
    return Session(telefono=telefono, estado=estado, datos=datos if isinstance(datos, dict) else {},
                   equipo_id_temp=row[2], contador_mensajes=int(row[3]), version=int(row[4]),
                   ultima_actividad=from_db(row[5]))


def save_session(cur: Any, dialect: str, before: Session, exists: bool, transition: Transition,
                 now: datetime, user: Identity | None = None) -> int:
    """Write the new state conditionally on ``before.version``; returns the new version."""
    datos = json.dumps(dict(transition.datos), ensure_ascii=False) if transition.datos else None
    ts = to_db(dialect, now)
    user_id, parent = (user.user_id, user.parent_user_id) if user is not None else (None, None)
    if not exists:
        # A first message: the primary key is the version check (a concurrent
        # first message of the same phone makes this INSERT fail).
        try:
            cur.execute(
                "INSERT INTO SesionesChat (Telefono, Estado, DatosTemp, EquipoIdTemp, ContadorMensajes, "
                "FechaCreacion, UltimaActividad, Version, UsuarioId, UsuarioIdPadre) "
                "VALUES (?, ?, ?, ?, 1, ?, ?, 1, ?, ?)",
                (before.telefono, transition.estado_nuevo, datos, transition.equipo_id_temp, ts, ts, user_id, parent))
        except Exception as exc:
            if is_unique_violation(exc):
                raise ConcurrencyError("save_session", 0) from None
            raise
        return 1
    cur.execute(
        "UPDATE SesionesChat SET Estado = ?, DatosTemp = ?, EquipoIdTemp = ?, "
        "ContadorMensajes = ContadorMensajes + 1, UltimaActividad = ?, Version = Version + 1, "
        "UsuarioId = COALESCE(?, UsuarioId), UsuarioIdPadre = COALESCE(?, UsuarioIdPadre) "
        "WHERE Telefono = ? AND Version = ?",
        (transition.estado_nuevo, datos, transition.equipo_id_temp, ts, user_id, parent, before.telefono,
         before.version))
    if cur.rowcount != 1:
        raise ConcurrencyError("save_session", before.version)
    return before.version + 1

