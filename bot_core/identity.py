"""Who a WhatsApp user is: a phone number, a business-scoped user ID (BSUID), or both.

Since 2026 Meta identifies every user by a BSUID (``user_id``: a two-letter country
code, a dot, an optional ``ENT.`` for a parent BSUID, up to 128 alphanumerics), and a
user who adopts a username may arrive with no phone at all. ``Usuarios`` links the two
under one stable *user key* (``ClaveUsuario``): the BSUID when the user's first message
carried one, else the phone. A user first seen by phone keeps that key when a BSUID
appears later, so sessions, history and reports stay theirs; a number change moves the
new phone (and new BSUID) onto the same key. Replies go to the phone when known, else
to the BSUID (the Cloud API's ``recipient`` field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot_core.errors import ConcurrencyError, is_unique_violation
from bot_core.sqltime import to_db

PHONE_MAX = 20
BSUID_MAX = 2 + 1 + len("ENT.") + 128
PHONE = re.compile(r"[0-9]{4,%d}" % PHONE_MAX)
BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


def is_phone(value: object) -> bool:
    return isinstance(value, str) and PHONE.fullmatch(value) is not None


def is_bsuid(value: object) -> bool:
    return isinstance(value, str) and BSUID.fullmatch(value) is not None


@dataclass(frozen=True)
class Identity:
    """Who a user is: the key their rows use, and the phone and BSUIDs known for them."""

    key: str  # ClaveUsuario: what SesionesChat, MensajesChat, HistorialSesiones, Reportes are keyed by
    telefono: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None

    @property
    def address(self) -> str:
        """Where a reply goes: the phone when known, else the BSUID."""
        return self.telefono or self.user_id or self.key

    def names(self) -> frozenset[str]:
        """Every identifier of this user (for matching a reporter or a supervisor)."""
        return frozenset(v for v in (self.key, self.telefono, self.user_id, self.parent_user_id) if v)


USER_COLUMNS = ("ClaveUsuario", "Telefono", "UsuarioId", "UsuarioIdPadre")
_SELECT = f"SELECT {', '.join(USER_COLUMNS)} FROM Usuarios"


def candidates_where(table: str = "") -> str:
    """The users a message may be: by its BSUID, by its phone, or the one holding its base key
    (parameters: ``candidate_params``); ``table`` qualifies the columns (``"u."``) in a join."""
    return f"{table}UsuarioId = ? OR {table}Telefono = ? OR {table}ClaveUsuario = ?"


def _row(row: Any) -> Identity:
    return Identity(row[0], row[1], row[2], row[3])


def base_key(telefono: str | None, user_id: str | None) -> str:
    """A new user's key: the BSUID when the message carries one, else the phone."""
    return user_id or telefono or ""


def candidate_params(telefono: str | None, user_id: str | None) -> tuple[str | None, str | None, str]:
    return (user_id, telefono, base_key(telefono, user_id))


def resolve(cur: Any, dialect: str, telefono: str | None, user_id: str | None, parent: str | None,
            now: datetime, candidates: list[Identity] | None = None) -> Identity:
    """The user a message comes from, linking its phone and BSUID; creates the user if new.

    ``candidates``: the rows of ``candidates_where()`` when the caller read them already (in a read
    of its own that brings more, see ``processing.read_user_and_session``).
    Runs in the commit's transaction. A concurrent first message of the same user makes
    the INSERT fail on a unique key: ConcurrencyError, and the caller retries from a fresh read."""
    if not (telefono or user_id):
        raise ValueError("a user needs a phone or a BSUID")
    base = base_key(telefono, user_id)  # a new user's key, unless an older user holds it
    if candidates is None:
        # One read finds the user by BSUID or phone and whether ``base`` is taken as a key.
        cur.execute(f"{_SELECT} WHERE {candidates_where()}", candidate_params(telefono, user_id))
        candidates = [_row(r) for r in cur.fetchall()]
    rows = candidates
    by_bsuid = next((r for r in rows if user_id and r.user_id == user_id), None)
    by_phone = next((r for r in rows if telefono and r.telefono == telefono), None)
    if by_phone is not None and by_bsuid is None and user_id and by_phone.user_id not in (None, user_id):
        # The phone belongs to a user with another BSUID: a recycled number, a new person.
        _release_phone(cur, dialect, by_phone.key, now)
        by_phone = None
    found = by_bsuid or by_phone
    if found is None:
        key = _free_key(cur, base) if any(r.key == base for r in rows) else base
        return _insert(cur, dialect, Identity(key, telefono, user_id, parent), now)
    if by_phone is not None and by_phone is not found:
        _release_phone(cur, dialect, by_phone.key, now)  # the number now belongs to this user
    wanted = Identity(found.key, telefono or found.telefono, user_id or found.user_id, parent or found.parent_user_id)
    return _update(cur, dialect, found, wanted, now)


def move(cur: Any, dialect: str, who: Identity, new_telefono: str | None, new_user_id: str | None,
         now: datetime) -> Identity:
    """A phone-number change: the new phone and BSUID now reach the same user key (and so the
    same session, history and reports); another user row holding them lets go of them."""
    if new_telefono is None and new_user_id is None:
        return who
    cur.execute(f"{_SELECT} WHERE (UsuarioId = ? OR Telefono = ?) AND ClaveUsuario <> ?",
                (new_user_id, new_telefono, who.key))
    for other in [_row(r) for r in cur.fetchall()]:
        cur.execute("UPDATE Usuarios SET Telefono = CASE WHEN Telefono = ? THEN NULL ELSE Telefono END, "
                    "UsuarioId = CASE WHEN UsuarioId = ? THEN NULL ELSE UsuarioId END, FechaActualizacion = ? "
                    "WHERE ClaveUsuario = ?", (new_telefono, new_user_id, to_db(dialect, now), other.key))
    wanted = Identity(who.key, new_telefono or who.telefono, new_user_id or who.user_id, who.parent_user_id)
    return _update(cur, dialect, who, wanted, now)


def _free_key(cur: Any, base: str) -> str:
    """The first of ``base#2``, ``base#3``… no user holds as key (``base`` is held by an
    older user whose number moved on)."""
    n = 2
    while True:
        key = f"{base}#{n}"
        cur.execute("SELECT 1 FROM Usuarios WHERE ClaveUsuario = ?", (key,))
        if cur.fetchone() is None:
            return key
        n += 1


def _insert(cur: Any, dialect: str, who: Identity, now: datetime) -> Identity:
    try:
        cur.execute("INSERT INTO Usuarios (ClaveUsuario, Telefono, UsuarioId, UsuarioIdPadre, FechaCreacion) "
                    "VALUES (?, ?, ?, ?, ?)", (who.key, who.telefono, who.user_id, who.parent_user_id,
                                               to_db(dialect, now)))
    except Exception as exc:
        if is_unique_violation(exc):
            raise ConcurrencyError("resolve_user", 0) from None
        raise
    return who


def _update(cur: Any, dialect: str, before: Identity, after: Identity, now: datetime) -> Identity:
    if after == before:
        return before
    try:
        cur.execute("UPDATE Usuarios SET Telefono = ?, UsuarioId = ?, UsuarioIdPadre = ?, FechaActualizacion = ? "
                    "WHERE ClaveUsuario = ?", (after.telefono, after.user_id, after.parent_user_id,
                                               to_db(dialect, now), after.key))
    except Exception as exc:
        if is_unique_violation(exc):
            raise ConcurrencyError("resolve_user", 0) from None
        raise
    return after


def _release_phone(cur: Any, dialect: str, key: str, now: datetime) -> None:
    cur.execute("UPDATE Usuarios SET Telefono = NULL, FechaActualizacion = ? WHERE ClaveUsuario = ?",
                (to_db(dialect, now), key))
