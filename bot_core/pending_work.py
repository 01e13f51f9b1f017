"""When is there work that no commit of this process announced? One statement, no transaction.

An idle ``botctl serve`` must not poll the database several times a second: the
dispatcher and the sweeper are woken by commits in their own process, and a
single look-out asks the database, at an interval tied to the lease, for the
earliest moment something becomes due elsewhere: an inbox row waiting for a
processor (pending, or a lease that will expire) and an outbox row waiting to
be sent (pending, its retry time, or a lease that will expire).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot_core import inbox, outbox
from bot_core.sqltime import from_db

# Each MIN reads one state's slice of the (Estado, LeaseHasta) / (Estado, ProximoIntento) indexes.
_NEXT_DUE = (
    "SELECT "
    "(SELECT MIN(FechaCreacion) FROM MensajesProcesados WHERE Estado = ?), "
    "(SELECT MIN(LeaseHasta) FROM MensajesProcesados WHERE Estado = ?), "
    "(SELECT MIN(COALESCE(ProximoIntento, FechaCreacion)) FROM MensajesSalientes WHERE Estado = ?), "
    "(SELECT MIN(LeaseHasta) FROM MensajesSalientes WHERE Estado = ?)")


@dataclass(frozen=True)
class NextDue:
    """When the inbox and the outbox next have a row due (None: nothing waits)."""

    inbox: datetime | None  # the earliest an inbox row is claimable (None: nothing waits)
    outbox: datetime | None


def next_due(cur: Any) -> NextDue:
    cur.execute(_NEXT_DUE, (inbox.PENDING, inbox.PROCESSING, outbox.PENDING, outbox.SENDING))
    pending_in, lease_in, pending_out, lease_out = (from_db(v) for v in cur.fetchone())
    return NextDue(_earliest(pending_in, lease_in), _earliest(pending_out, lease_out))


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
