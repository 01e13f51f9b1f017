"""The outbox: replies written in the commit, sent afterwards by a dispatcher.

Rows of ``MensajesSalientes`` go PENDIENTE -> ENVIANDO (leased) -> ENVIADO ->
ENTREGADO -> LEIDO, or FALLIDO. The dispatcher claims a batch, hands each row
to a :class:`Sender` (the WhatsApp Graph API, or locally the chat), and records
the result; a row whose lease expired is claimed again, so a crash between
send and record can at worst resend a reply, never lose one.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol, Sequence

from bot_core.dbexec import DbExecutor
from bot_core.sqltime import to_db, utcnow
from bot_core.telemetry import Telemetry

PENDING, SENDING, SENT, DELIVERED, READ, FAILED = (
    "PENDIENTE", "ENVIANDO", "ENVIADO", "ENTREGADO", "LEIDO", "FALLIDO")
# Forward-only order of delivery states: a late "sent" never undoes a "read".
STATE_RANK = {PENDING: 0, SENDING: 1, SENT: 2, DELIVERED: 3, READ: 4, FAILED: 5}
STATUS_TO_STATE = {"sent": SENT, "delivered": DELIVERED, "read": READ, "failed": FAILED}
NOT_SENT_CODES = frozenset({"held", "throttled"})


@dataclass(frozen=True)
class OutboundMessage:
    """A MensajesSalientes row leased for sending."""

    outbox_id: int
    message_id: str  # the inbound message it answers
    sequence: int
    telefono: str  # the recipient: a phone, or a BSUID for a user known only by it
    kind: str  # text | buttons | list
    text: str
    options: tuple[tuple[str, str], ...]
    attempts: int


@dataclass(frozen=True)
class SendResult:
    """What a send attempt came to: sent (or delivered locally), to retry (and when), or failed for good."""

    state: str  # SENT, DELIVERED (local), PENDING (retry later) or FAILED
    wamid: str | None = None
    retry_after_s: float | None = None
    error_code: str | None = None
    error_detail: str | None = None


class Sender(Protocol):
    async def send(self, message: OutboundMessage) -> SendResult: ...


class LocalSender:
    """No Graph API configured: the reply is recorded as delivered and only stored (``botctl chat``
    gets replies through a Graph API stand-in instead: ``serve --whatsapp-url``)."""

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(DELIVERED, wamid=f"local.{message.outbox_id}")


def _content(reply: Any) -> str:
    return json.dumps({"text": reply.text, "options": [list(o) for o in reply.options]}, ensure_ascii=False)


def insert_replies(cur: Any, dialect: str, origin: str, recipient: str, replies: Sequence[Any], ts: Any,
                   lease_until: Any, ids: tuple[str | None, str | None]) -> tuple[OutboundMessage, ...]:
    """Insert a message's replies in one statement, already claimed (ENVIANDO, leased until
    ``lease_until``, one attempt) for the worker that commits them, so that it sends them
    right after the commit without a claim of its own; returns those claimed rows.

    A reply is inserted claimed only when no earlier reply to the same recipient is still
    unsent (PENDIENTE or ENVIANDO): otherwise it is inserted PENDIENTE and waits for the
    claim path behind it, which keeps a recipient's replies in the order they were written.
    A worker that dies after the commit leaves its claimed rows to expire; the claim path
    (``claim_batch``: ENVIANDO with an expired lease) sends them then."""
    if not replies:
        return ()
    columns = ("MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido, Estado, LeaseHasta, Intentos, "
               "FechaCreacion, UsuarioId, UsuarioIdPadre")
    earlier = "EXISTS (SELECT 1 FROM MensajesSalientes e WHERE e.Telefono = ? AND e.Estado IN (?, ?))"
    unsent = (recipient, PENDING, SENDING)
    # State, lease and attempts, each decided by the same test (a correlated-free EXISTS).
    chosen = (f"CASE WHEN {earlier} THEN ? ELSE ? END, CASE WHEN {earlier} THEN NULL ELSE ? END, "
              f"CASE WHEN {earlier} THEN 0 ELSE 1 END")
    rows = [((origin, seq, recipient, reply.kind, _content(reply)),
             (*unsent, PENDING, SENDING, *unsent, lease_until, *unsent), (ts, *ids))
            for seq, reply in enumerate(replies, start=1)]
    params = [value for head, decided, tail in rows for value in (*head, *decided, *tail)]
    if dialect == "mssql":
        # T-SQL allows no subquery in VALUES: one SELECT per row, joined by UNION ALL.
        select = f"SELECT ?, ?, ?, ?, ?, {chosen}, ?, ?, ?"
        cur.execute(f"INSERT INTO MensajesSalientes ({columns}) OUTPUT inserted.SalienteId, inserted.Estado "
                    + " UNION ALL ".join([select] * len(rows)), params)
    else:
        values = f"(?, ?, ?, ?, ?, {chosen}, ?, ?, ?)"
        cur.execute(f"INSERT INTO MensajesSalientes ({columns}) VALUES {', '.join([values] * len(rows))} "
                    "RETURNING SalienteId, Estado", params)
    inserted = sorted((int(r[0]), r[1]) for r in cur.fetchall())  # ids ascend in the order written
    return tuple(OutboundMessage(outbox_id, origin, seq, recipient, reply.kind, reply.text,
                                 tuple(tuple(o) for o in reply.options), 1)
                 for (outbox_id, state), (seq, reply) in zip(inserted, enumerate(replies, start=1))
                 if state == SENDING)


def claim_batch(cur: Any, dialect: str, now: datetime, lease_until: datetime, limit: int,
                origin: str | None = None) -> list[OutboundMessage]:
    """Lease up to ``limit`` due rows; with ``origin``, only the replies to that inbound message."""
    top = f"TOP ({int(limit)}) " if dialect == "mssql" else ""
    tail = "" if dialect == "mssql" else f" LIMIT {int(limit)}"
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    hint = " WITH (UPDLOCK, READPAST, ROWLOCK)" if dialect == "mssql" else ""
    ts = to_db(dialect, now)
    only = "m.MensajeOrigenId = ? AND " if origin is not None else ""
    # A reply is not claimed while an earlier one to the same phone is still waiting for
    # its retry or being sent: a recipient's replies leave in the order they were written.
    cur.execute(
        f"SELECT {top}m.SalienteId, m.MensajeOrigenId, m.Secuencia, m.Telefono, m.Tipo, m.Contenido, m.Intentos "
        f"FROM MensajesSalientes m{hint} "
        f"WHERE {only}((m.Estado = ? AND (m.ProximoIntento IS NULL OR m.ProximoIntento <= ?)) "
        f"OR (m.Estado = ? AND m.LeaseHasta < ?)) "
        f"AND NOT EXISTS (SELECT 1 FROM MensajesSalientes e WHERE e.Telefono = m.Telefono "
        f"AND e.SalienteId < m.SalienteId AND ((e.Estado = ? AND e.ProximoIntento > ?) "
        f"OR (e.Estado = ? AND e.LeaseHasta >= ?))) "
        f"ORDER BY m.SalienteId{tail}{lock}",
        ((origin,) if origin is not None else ()) + (PENDING, ts, SENDING, ts, PENDING, ts, SENDING, ts))
    rows = cur.fetchall()
    if not rows:
        return []
    cur.executemany("UPDATE MensajesSalientes SET Estado = ?, LeaseHasta = ?, Intentos = Intentos + 1 "
                    "WHERE SalienteId = ?", [(SENDING, to_db(dialect, lease_until), r[0]) for r in rows])
    out = []
    for r in rows:
        content = json.loads(r[5])
        out.append(OutboundMessage(int(r[0]), r[1], int(r[2]), r[3], r[4], content.get("text", ""),
                                   tuple(tuple(o) for o in content.get("options", [])), int(r[6]) + 1))
    return out


def record_results(cur: Any, dialect: str, results: list[tuple[OutboundMessage, SendResult]], now: datetime) -> None:
    ts = to_db(dialect, now)
    for message, result in results:
        if result.state == PENDING:
            retry_at = now + timedelta(seconds=result.retry_after_s or 1.0)
            # Held back before reaching the API (throttled, or behind an earlier reply): not an attempt.
            not_sent = 1 if result.error_code in NOT_SENT_CODES else 0
            cur.execute("UPDATE MensajesSalientes SET Estado = ?, LeaseHasta = NULL, ProximoIntento = ?, "
                        "Intentos = Intentos - ?, CodigoError = ?, DetalleError = ?, FechaActualizacion = ? "
                        "WHERE SalienteId = ? AND Estado = ?",
                        (PENDING, to_db(dialect, retry_at), not_sent, result.error_code,
                         (result.error_detail or "")[:400], ts, message.outbox_id, SENDING))
        else:
            cur.execute("UPDATE MensajesSalientes SET Estado = ?, LeaseHasta = NULL, WamidSaliente = ?, "
                        "CodigoError = ?, DetalleError = ?, FechaEnvio = ?, FechaActualizacion = ? "
                        "WHERE SalienteId = ? AND Estado = ?",
                        (result.state, result.wamid, result.error_code, (result.error_detail or "")[:400] or None,
                         ts, ts, message.outbox_id, SENDING))


def apply_status(cur: Any, dialect: str, wamid: str, status: str, now: datetime,
                 error_code: str | None = None, error_detail: str | None = None,
                 recipient_user_id: str | None = None, *, recipient: str | None) -> bool:
    """Move a sent row forward on a Meta ``statuses`` webhook; never backwards. Matched by
    wamid, and applied only when the status names the row's recipient (``recipient_id``, the
    phone, or ``recipient_user_id``, the BSUID, against the row's user key or BSUID); the
    recipient's BSUID is recorded when Meta sends it."""
    if not recipient and not recipient_user_id:
        return False
    state = STATUS_TO_STATE.get(status)
    if state is None:
        return False
    lower = [s for s, rank in STATE_RANK.items() if rank < STATE_RANK[state] and s not in (PENDING, SENDING)]
    if not lower:
        return False
    marks = ", ".join("?" for _ in lower)
    cur.execute(f"UPDATE MensajesSalientes SET Estado = ?, CodigoError = COALESCE(?, CodigoError), "
                f"DetalleError = COALESCE(?, DetalleError), FechaActualizacion = ?, "
                f"UsuarioId = COALESCE(UsuarioId, ?) "
                f"WHERE WamidSaliente = ? AND (Telefono IN (?, ?) OR UsuarioId IN (?, ?)) "
                f"AND Estado IN ({marks})",
                (state, error_code, error_detail, to_db(dialect, now), recipient_user_id, wamid,
                 recipient, recipient_user_id, recipient, recipient_user_id, *lower))
    return cur.rowcount > 0


class Dispatcher:
    """Sends outbox rows through the sender and records the results.

    Three ways in, one delivery path (:meth:`_deliver`):

    * :meth:`send_replies_of` -- the after-commit send: the worker that committed a
      message sends that message's own replies right away (Azure Functions, where
      nothing runs after the invocation; any host that wants the shortest path);
    * :meth:`run` -- the background loop of ``botctl serve``: woken by :meth:`kick`
      (after each commit in this process, or by the look-out that finds work other
      processes left, see ``bot_core.pending_work``) and when a retry this process
      scheduled falls due; with ``poll_interval_s`` also every so often (the old
      polling, kept as a setting for comparison);
    * :meth:`drain` -- one bounded round (the Functions timer).
    """

    def __init__(self, dbx: DbExecutor, sender: Sender, telemetry: Telemetry, batch: int = 50,
                 lease_seconds: float = 30.0, poll_interval_s: float | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.dbx = dbx
        self.sender = sender
        self.telemetry = telemetry
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._retries: list[float] = []  # heap: monotonic times of the retries this process scheduled
        self._held: dict[str, float] = {}  # recipient -> monotonic time until which; see held_back()
        self._unrecorded: list[tuple[list[tuple[OutboundMessage, SendResult]], asyncio.Future]] = []
        self._recorder: asyncio.Future | None = None  # the task recording them (see _record)

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.drain_once()
            except Exception as exc:  # the database may be down: try again on the next tick
                self.telemetry.emit("operation.degraded", operation="dispatch_outbox", error_type=type(exc).__name__)
                sent = 0
            if sent == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait())
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()

    def _idle_wait(self) -> float | None:
        """Seconds until this process has a reason to look again without a kick (None: never)."""
        now = time.monotonic()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)  # due: the drain that just ran has claimed it
        waits = [w for w in (self.poll_interval_s, self._retries[0] - now if self._retries else None)
                 if w is not None]
        return min(waits) if waits else None

    async def drain_once(self) -> int:
        now = self.clock()
        batch = await self.dbx.transaction(claim_batch, self.dbx.db.dialect, now, now + self.lease, self.batch)
        return await self._deliver(batch)

    async def drain(self, budget_s: float) -> int:
        """One bounded round: batches until nothing is due or ``budget_s`` has passed."""
        deadline = time.monotonic() + budget_s
        total = 0
        while time.monotonic() < deadline:
            sent = await self.drain_once()
            total += sent
            if sent < self.batch:
                break
        return total

    async def send_replies_of(self, message_id: str) -> int:
        """The after-commit send: claim and send the replies of ``message_id`` now.

        The outbox rows stay the record. A reply that cannot be claimed (an earlier one
        to the same phone is waiting), fails or is late stays in the outbox for the
        next drain; a database error is reported and left to it as well.
        """
        now = self.clock()
        try:
            batch = await self.dbx.transaction(claim_batch, self.dbx.db.dialect, now, now + self.lease,
                                               self.batch, message_id)
            return await self._deliver(batch)
        except Exception as exc:
            self.telemetry.emit("operation.degraded", operation="dispatch_outbox", error_type=type(exc).__name__)
            return 0

    def held_back(self, recipient: str) -> None:
        """A commit left replies to ``recipient`` PENDIENTE behind an earlier unsent one: the
        claim path is woken when this process's after-commit send to that recipient finishes
        (within a lease period). Not now: the reply ahead is still being sent, so a claim
        now would find nothing (under load, a wasted write transaction per held message).
        A reply ahead that the claim path sends is followed by its next drain; one of another
        process, or a retry, by the look-out when it falls due."""
        now = time.monotonic()
        if len(self._held) > 1000:  # forget the expired ones
            self._held = {r: until for r, until in self._held.items() if until > now}
        self._held[recipient] = now + self.lease.total_seconds()

    async def send_claimed(self, batch: tuple[OutboundMessage, ...]) -> int:
        """The after-commit send of replies the commit inserted already claimed (no claim
        round trip). A failure leaves them ENVIANDO until their lease expires, then the
        claim path takes them, as after a crash."""
        try:
            sent = await self._deliver(list(batch))
        except Exception as exc:
            self.telemetry.emit("operation.degraded", operation="dispatch_outbox", error_type=type(exc).__name__)
            return 0
        if self._held:
            now = time.monotonic()
            for recipient in {message.telefono for message in batch}:
                if self._held.pop(recipient, 0.0) > now:
                    self.kick()  # what waited behind these replies may be claimable now
        return sent

    async def _deliver(self, batch: list[OutboundMessage]) -> int:
        if not batch:
            return 0
        by_recipient: dict[str, list[OutboundMessage]] = {}
        for message in batch:  # claimed in SalienteId order, which is the order they were written
            by_recipient.setdefault(message.telefono, []).append(message)
        if len(by_recipient) == 1:  # the after-commit send: no tasks to gather
            results = await self._send_in_order(batch)
        else:
            groups = await asyncio.gather(*(self._send_in_order(group) for group in by_recipient.values()))
            results = [pair for group in groups for pair in group]
        await self._record(results)
        now = time.monotonic()
        for _, result in results:
            if result.state == PENDING:  # record_results scheduled it this far ahead
                heapq.heappush(self._retries, now + (result.retry_after_s or 1.0))
        return len(batch)

    async def _record(self, results: list[tuple[OutboundMessage, SendResult]]) -> None:
        """Record send results, grouped: the results of the sends that finish while a recording
        is under way (or in the same turn of the event loop) are recorded together by the
        next one (see below). Under load the after-commit sends on SQLite cost one commit per
        group instead of one per message."""
        waiter = asyncio.get_running_loop().create_future()
        self._unrecorded.append((results, waiter))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.ensure_future(self._record_waiting())
        await waiter

    async def _record_waiting(self) -> None:
        while self._unrecorded:
            waiting, self._unrecorded = self._unrecorded, []
            results = [pair for group, _ in waiting for pair in group]
            # Each result is its own UPDATE, independent of the others: on a server database
            # they run in autocommit (no BEGIN/COMMIT round trips); on SQLite, where a commit
            # is the cost and there is no network, several go in one transaction.
            grouped = len(results) > 1 and self.dbx.db.dialect == "sqlite"
            record = self.dbx.transaction if grouped else self.dbx.single
            try:
                await record(record_results, self.dbx.db.dialect, results, self.clock())
            except Exception as exc:  # each waiting sender sees the failure as its own
                for _, waiter in waiting:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                for _, waiter in waiting:
                    if not waiter.done():
                        waiter.set_result(None)

    async def _send_in_order(self, messages: list[OutboundMessage]) -> list[tuple[OutboundMessage, SendResult]]:
        """One recipient's replies one after another; if one must wait, the later ones wait too."""
        out: list[tuple[OutboundMessage, SendResult]] = []
        held: SendResult | None = None
        for message in messages:
            if held is not None:
                out.append((message, SendResult(PENDING, retry_after_s=held.retry_after_s, error_code="held")))
                continue
            result = await self._send(message)
            out.append((message, result))
            if result.state == PENDING:
                held = result
        return out

    async def _send(self, message: OutboundMessage) -> SendResult:
        try:
            result = await self.sender.send(message)
        except Exception as exc:
            result = SendResult(PENDING, retry_after_s=2.0, error_code=type(exc).__name__, error_detail=str(exc)[:200])
        if result.error_code in NOT_SENT_CODES:
            return result  # never left: neither a send nor a failure to count
        event = "outbox.failed" if result.state in (PENDING, FAILED) else "outbox.sent"
        self.telemetry.emit(event, telefono=message.telefono, outbox_id=message.outbox_id,
                            attempt=message.attempts, error_code=result.error_code or "")
        return result
