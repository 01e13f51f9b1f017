"""Steps 2-4 of DESIGN.md for one inbound message: understand, decide, commit.

The commit is one transaction whose first write moves the inbox row from
PROCESANDO to PROCESADO (only one processor can), then reads the session with
its version, runs the pure ``step()``, and writes the session conditionally,
the chat and audit history, the report and the outbox rows. A version conflict
rolls all of it back and is retried (tenacity: 3 attempts, so 2 waits, 50 then
100 ms with up to 25 % jitter; see RetryPolicy); when the attempts run out the row
goes back to PENDIENTE for the sweeper.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from bot_core import identity, inbox, outbox
from bot_core.conversation.model import (INICIO, OTRO, REPORTAR_FALLA, REPORTE_REFRIGERADOR, REPORTE_VEHICULO,
                                         STATES, CreateReport, Equipo, Facts, Inbound, ReportStatus, Session,
                                         Transition, Understanding)
from bot_core.conversation.step import effective_state, needed_lookups, step
from bot_core.dbexec import DbExecutor
from bot_core.errors import ConcurrencyError
from bot_core.intent import IntentService, RulesIntentService
from bot_core.keyed_lock import KeyedLock
from bot_core.sessions import SESSION_COLUMNS, save_session, session_from_row
from bot_core.settle import Operation, settle
from bot_core.sqltime import from_db, to_db, utcnow
from bot_core.telemetry import Telemetry
from bot_core.webhook.payload import InboundMessage

MAX_ATTEMPTS = 5  # processing attempts of one inbox row before it is parked as FALLIDO
# Up to this many characters the rules cost microseconds and run on the event loop;
# a longer text is understood on a worker thread (never inside the transaction).
INLINE_RULES_CHARS = 256
# interpretTerm is about a term, not a story: the model sees at most this much of the text.
INTERPRET_TERM_CHARS = 200


@dataclass(frozen=True)
class RetryPolicy:
    """Phase-1 fix 1.1: 3 attempts in all, so 2 waits: 50 then 100 ms, each with up to 25 % jitter.

    The release note's "50 -> 100 -> 200 ms, 3 attempts" and its log line "Intento 1/3 falló,
    reintentando en 52ms" count attempts: after the third failure there is nothing left to wait
    for (its 200 ms would only delay the deferral to the sweeper). docs/design-notes.md says so.
    """

    attempts: int = 3
    base_ms: float = 50.0
    jitter: float = 0.25

    def schedule_ms(self) -> list[float]:
        """The waits before each retry, without jitter: ``[50, 100]`` for 3 attempts."""
        return [self.base_ms * 2 ** (n - 1) for n in range(1, self.attempts)]

    def delay_ms(self, retry_number: int, rng: Callable[[], float] = random.random) -> int:
        """The wait after failed attempt ``retry_number`` (1 .. attempts - 1), jitter included."""
        if not 1 <= retry_number < self.attempts:
            raise ValueError(f"no wait after attempt {retry_number} of {self.attempts}")
        return int(self.schedule_ms()[retry_number - 1] * (1 + self.jitter * rng()))


@dataclass(frozen=True)
class Outcome:
    """How processing one inbound message ended, and the replies it committed."""

    message_id: str
    status: str  # processed | already-processed | deferred | failed
    state_from: str = ""
    state_to: str = ""
    reports: tuple[str, ...] = ()
    replies: int = 0
    # Replies committed already claimed by this worker (ENVIANDO, its lease): it sends them
    # right after the commit; the others (replies - len(claimed)) wait for the claim path.
    claimed: tuple[outbox.OutboundMessage, ...] = ()
    recipient: str = ""  # where the replies go (the user's phone, else BSUID)

    @property
    def unclaimed(self) -> int:
        return self.replies - len(self.claimed)


class Processor:
    def __init__(self, dbx: DbExecutor, telemetry: Telemetry, intent: IntentService | None = None,
                 idle_minutes: int = 30, lease_seconds: float = 30.0, retry: RetryPolicy = RetryPolicy(),
                 on_committed: Callable[[str], None] | None = None, clock: Callable[[], datetime] = utcnow,
                 supervisors: frozenset[str] = frozenset(), smoke_phone: str | None = None):
        self.dbx = dbx
        self.dialect = dbx.db.dialect
        self.telemetry = telemetry
        self.intent = intent or RulesIntentService()
        self.idle_minutes = idle_minutes
        self.lease = timedelta(seconds=lease_seconds)
        self.retry = retry
        # Called with the recipient when a commit left replies for the claim path.
        self.on_committed = on_committed or (lambda recipient: None)
        self.clock = clock
        self.supervisors = supervisors  # phones or BSUIDs that may read every ticket
        self.locks = KeyedLock()
        # The smoke-test identity (botctl smoke): recorded and answered like anyone, but it
        # creates no report and its telemetry is marked synthetic (kept out of the metrics).
        self.smoke_phone = smoke_phone

    def synthetic(self, telefono: str | None) -> dict[str, int]:
        """Telemetry properties marking the smoke identity's records (empty for everyone else)."""
        return {"synthetic": 1} if self.smoke_phone is not None and telefono == self.smoke_phone else {}

    # --- entry points ----------------------------------------------------------

    async def process(self, message: InboundMessage) -> Outcome:
        """Process a message whose inbox row this process has claimed (PROCESANDO)."""
        async with self.locks.hold(message.user_key):
            return await self._process_locked(message)

    async def claim_and_process(self, message_id: str) -> Outcome | None:
        """Sweeper / queued worker: take the lease on a row, then process it."""
        now = self.clock()
        claimed = await self.dbx.transaction(self._claim, message_id, now)
        if claimed is None:
            return None
        message, attempts = claimed
        if attempts > MAX_ATTEMPTS:
            await self.dbx.transaction(inbox.release, message_id, f"gave up after {MAX_ATTEMPTS} attempts", True)
            self.telemetry.emit("message.failed", telefono=message.user_key, message_id=message_id,
                                error_type="MaxAttempts")
            return Outcome(message_id, "failed")
        return await self.process(message)

    def _claim(self, cur: Any, message_id: str, now: datetime) -> tuple[InboundMessage, int] | None:
        if not inbox.claim_message(cur, self.dialect, message_id, now, now + self.lease):
            return None
        return inbox.load_payload(cur, message_id)

    # --- the pipeline ------------------------------------------------------------

    async def _process_locked(self, message: InboundMessage) -> Outcome:
        started = time.perf_counter()
        ai: Understanding | None = None
        if self.intent.remote and message.reply_id is None and message.kind == "text":
            # Outside any transaction: a slow AI provider holds no lock and no connection.
            (ai,) = await settle(self.telemetry, Operation(
                "understand_ai", self.intent.understand(message.text, None), fallback=None))
        if ai is None:
            ai = await _rules_ahead(message)
        if self.intent.remote and message.reply_id is None and message.text:
            ai = await self._interpret_kind(message.text, ai)
        try:
            outcome = await self._commit_with_retries(message, ai)
        except ConcurrencyError:
            self.telemetry.emit("concurrency.exhausted", telefono=message.user_key,
                                operation="commit_transition", attempts=self.retry.attempts)
            await self._release(message, "ConcurrencyError: retries exhausted")
            return Outcome(message.message_id, "deferred")
        except Exception as exc:
            self.telemetry.emit("message.failed", telefono=message.user_key, message_id=message.message_id,
                                error_type=type(exc).__name__)
            await self._release(message, f"{type(exc).__name__}: {exc}")
            return Outcome(message.message_id, "failed")
        if outcome.status == "processed":
            self.telemetry.emit("message.processed", telefono=message.user_key, message_id=message.message_id,
                                message_type=message.kind, state_from=outcome.state_from,
                                state_to=outcome.state_to,
                                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                                **self.synthetic(message.telefono))
            if outcome.unclaimed:
                self.on_committed(outcome.recipient)  # replies left to the claim path: wake the dispatcher
        return outcome

    async def _interpret_kind(self, text: str, ai: Understood) -> Understood:
        """The release note's interpretTerm. At the menu (INICIO), a fault whose kind neither the
        model nor the rules could tell ("se descompuso la vitrina": REPORTAR_FALLA, or OTRO with a
        description) asks the model what the term names, outside any transaction and under its
        own deadline (3 s). Its fallback (None) leaves the understanding as it was, so the bot
        shows the menu as it would anyway. Only INICIO: later states already know the kind."""
        readings = ai if isinstance(ai, Mapping) else {estado: ai for estado in STATES}
        first = readings.get(INICIO)
        if first is None or not (first.intent == REPORTAR_FALLA or (first.intent == OTRO and "problema" in first.entities)):
            return ai
        kind = {"REFRIGERADOR": REPORTE_REFRIGERADOR, "VEHICULO": REPORTE_VEHICULO}.get(
            await self.intent.interpret_term(text[:INTERPRET_TERM_CHARS], INICIO) or "")
        if kind is None:
            return ai
        return {**readings, INICIO: replace(first, intent=kind, source="ai")}

    async def _release(self, message: InboundMessage, error: str) -> None:
        try:
            await self.dbx.transaction(inbox.release, message.message_id, error)
        except Exception:
            pass  # the lease expires and the sweeper takes it anyway
        self.telemetry.emit("message.deferred", telefono=message.user_key, message_id=message.message_id,
                            reason=error[:120])

    async def _commit_with_retries(self, message: InboundMessage, ai: Understood) -> Outcome:
        def log_retry(state: RetryCallState) -> None:
            assert state.next_action is not None
            self.telemetry.emit("concurrency.retry", telefono=message.user_key, operation="commit_transition",
                                attempt=state.attempt_number, max_attempts=self.retry.attempts,
                                delay_ms=int(state.next_action.sleep * 1000))

        def wait(state: RetryCallState) -> float:
            # tenacity asks for the wait before it checks stop: after the last attempt there is none.
            n = state.attempt_number
            return self.retry.delay_ms(n) / 1000 if n < self.retry.attempts else 0.0

        def on_conflict(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ConcurrencyError):
                self.telemetry.emit("concurrency.conflict", telefono=message.user_key,
                                    operation=exc.operation, expected_version=exc.expected_version)

        async for attempt in AsyncRetrying(retry=retry_if_exception_type(ConcurrencyError),
                                           stop=stop_after_attempt(self.retry.attempts), wait=wait,
                                           before_sleep=log_retry, after=on_conflict, reraise=True):
            with attempt:
                return await self.dbx.transaction(self._commit, message, ai, self.clock())
        raise AssertionError("unreachable")

    def _commit(self, cur: Any, message: InboundMessage, ai: Understood, now: datetime) -> Outcome:
        # First write: lock the inbox row; if another processor finished it, stop here.
        if not inbox.mark_processed(cur, self.dialect, message.message_id, now):
            return Outcome(message.message_id, "already-processed")
        user, stored = read_user_and_session(cur, self.dialect, message, now)
        if message.kind == "system":  # user_changed_number: the new phone/BSUID reach this user
            user = identity.move(cur, self.dialect, user, message.new_telefono, message.new_user_id, now)
        session = stored or Session.new(user.key)
        # Understand against the state step() will decide in (an idle session starts over).
        estado = effective_state(session, now, self.idle_minutes)
        if isinstance(ai, Understanding):
            understanding = ai
        elif ai is not None and estado in ai:  # the rules' reading in every state, made before
            understanding = ai[estado]
        else:  # a state this code does not know (a legacy row): the rules, here
            understanding = RulesIntentService.rules(message.text, message.reply_id, estado)
        facts = load_facts(cur, understanding, now, self.idle_minutes, user, self.supervisors,
                           message if message.kind == "edit" else None)
        inbound = Inbound(message.message_id, user.key, message.kind, message.text,
                          message.reply_id, message.timestamp, message.ref_id)
        transition = step(session, inbound, understanding, facts)
        if self.synthetic(message.telefono) and transition.effects:
            transition = replace(transition, effects=())  # a smoke test never files a report
        if transition.replies or stored is None or transition.estado_nuevo != session.estado:
            # An event that is not a request leaves an existing session untouched (not even its clock).
            save_session(cur, self.dialect, session, stored is not None, transition, now, user)
        reports, claimed = write_records(cur, self.dialect, message, user, transition, now, now + self.lease)
        for ticket, report_type in reports:
            self.telemetry.emit("report.created", telefono=user.key, ticket=ticket, report_type=report_type)
        return Outcome(message.message_id, "processed", transition.estado_anterior, transition.estado_nuevo,
                       tuple(t for t, _ in reports), len(transition.replies), claimed, user.address)


def read_user_and_session(cur: Any, dialect: str, message: InboundMessage,
                          now: datetime) -> tuple[identity.Identity, Session | None]:
    """The sender (``identity.resolve``, which creates a new user) and their session, read in
    one statement: the candidate users joined to their sessions, plus the session keyed by
    the new user's key (one from before users had keys: the phone)."""
    users = ", ".join(f"u.{c}" for c in identity.USER_COLUMNS)
    nulls = ", ".join("NULL" for _ in identity.USER_COLUMNS)
    session = ", ".join(f"s.{c}" for c in ("Telefono", *SESSION_COLUMNS))
    params = identity.candidate_params(message.telefono, message.user_id)
    cur.execute(f"SELECT {users}, {session} FROM Usuarios u LEFT JOIN SesionesChat s ON s.Telefono = u.ClaveUsuario "
                f"WHERE {identity.candidates_where('u.')} UNION ALL SELECT {nulls}, {session} FROM SesionesChat s WHERE s.Telefono = ?",
                (*params, params[-1]))
    width = len(identity.USER_COLUMNS)
    rows = cur.fetchall()
    candidates = [identity.Identity(*row[:width]) for row in rows if row[0] is not None]
    sessions_by_key = {row[width]: row[width + 1:] for row in rows if row[width] is not None}
    user = identity.resolve(cur, dialect, message.telefono, message.user_id, message.parent_user_id, now,
                            candidates)
    return user, session_from_row(user.key, sessions_by_key.get(user.key))


Understood = Understanding | Mapping[str, Understanding] | None  # the AI's, or the rules' in every state


async def _rules_ahead(message: InboundMessage) -> Mapping[str, Understanding]:
    """The rules understanding for every session state, outside the transaction; a long
    text on a worker thread so the event loop keeps answering meanwhile."""
    if message.text is None or len(message.text) <= INLINE_RULES_CHARS:
        return RulesIntentService.rules_in_every_state(message.text, message.reply_id)
    return await asyncio.to_thread(RulesIntentService.rules_in_every_state, message.text, message.reply_id)


def load_facts(cur: Any, understanding: Understanding, now: datetime, idle_minutes: int,
               user: identity.Identity | None = None, supervisors: frozenset[str] = frozenset(),
               edit: InboundMessage | None = None) -> Facts:
    """Everything ``step()`` may look up, read in the commit's transaction."""
    equipos: dict[str, Equipo] = {}
    reportes: dict[str, ReportStatus] = {}
    lookups = needed_lookups(understanding)  # cleaned the way step() reads them
    for codigo in lookups.codigos_sap:
        cur.execute("SELECT EquipoId, CodigoSAP, Tipo, Descripcion, Ubicacion, Activo FROM Equipos "
                    "WHERE CodigoSAP = ?", (codigo,))
        row = cur.fetchone()
        if row is not None:
            equipos[codigo] = Equipo(int(row[0]), row[1], row[2], row[3] or "", row[4], bool(row[5]))
    viewer = user.names() if user is not None else frozenset()
    for ticket in lookups.tickets:
        # A short form (the last 8 hex digits) matches by suffix; of several, the asker's own first.
        where, value = ("NumeroTicket = ?", ticket) if "-" in ticket else ("NumeroTicket LIKE ?", f"%-{ticket}")
        cur.execute("SELECT NumeroTicket, TipoReporte, Estado, FechaCreacion, Telefono, UsuarioId "
                    f"FROM Reportes WHERE {where}", (value,))
        found = [ReportStatus(row[0], row[1], row[2], from_db(row[3]), frozenset(v for v in row[4:6] if v))
                 for row in cur.fetchall()]
        found.sort(key=lambda status: not (status.owners & viewer))
        if found:
            reportes[ticket] = found[0]
    last_message_id = None
    if edit is not None and user is not None:  # what an edit may change: the user's previous message
        cur.execute("SELECT MensajeId FROM MensajesChat WHERE Telefono = ? AND Tipo = 'U' AND MensajeId <> ? "
                    "ORDER BY MensajeChatId DESC", (user.key, edit.message_id))
        row = cur.fetchone()
        last_message_id = row[0] if row is not None else None
    return Facts(now=now, equipos=equipos, reportes=reportes, idle_minutes=idle_minutes, viewer=viewer,
                 supervisor=bool(viewer & supervisors), last_message_id=last_message_id)


def _insert_returning_id(cur: Any, dialect: str, table: str, id_column: str, columns: tuple[str, ...],
                         values: tuple[Any, ...]) -> int:
    marks = ", ".join("?" for _ in columns)
    if dialect == "mssql":
        cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) OUTPUT inserted.{id_column} VALUES ({marks})",
                    values)
    else:
        cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) RETURNING {id_column}", values)
    return int(cur.fetchone()[0])


def write_records(cur: Any, dialect: str, message: InboundMessage, user: identity.Identity,
                  transition: Transition, now: datetime,
                  lease_until: datetime) -> tuple[list[tuple[str, str]], tuple[outbox.OutboundMessage, ...]]:
    """Chat history, reports, the audit row and the outbox rows of one transition, keyed by
    the user key; each row also records the BSUID and parent BSUID the user is known by.
    Returns the reports created and the replies inserted already claimed until ``lease_until``
    for the caller to send after the commit (see ``outbox.insert_replies``)."""
    ts = to_db(dialect, now)
    ids = (user.user_id, user.parent_user_id)
    chat_rows = [(user.key, "U", message.text if message.text is not None else f"[{message.kind}]",
                  message.message_id, ts, *ids)]
    chat_rows += [(user.key, "B", reply.text, message.message_id, ts, *ids) for reply in transition.replies]
    # One multi-row INSERT, not a statement per row: on a networked database each is a round trip.
    cur.execute("INSERT INTO MensajesChat (Telefono, Tipo, Contenido, MensajeId, Fecha, UsuarioId, UsuarioIdPadre) "
                "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chat_rows)),
                [value for row in chat_rows for value in row])
    reports: list[tuple[str, str]] = []
    report_id = None
    for effect in transition.effects:
        if isinstance(effect, CreateReport):
            report_id = _insert_returning_id(
                cur, dialect, "Reportes", "ReporteId",
                ("NumeroTicket", "Telefono", "TipoReporte", "EquipoId", "NumeroEmpleado", "Descripcion",
                 "Estado", "MensajeOrigenId", "FechaCreacion", "UsuarioId", "UsuarioIdPadre"),
                (effect.numero_ticket, user.key, effect.tipo_reporte, effect.equipo_id,
                 effect.numero_empleado, effect.descripcion, "PENDIENTE", message.message_id, ts, *ids))
            reports.append((effect.numero_ticket, effect.tipo_reporte))
    cur.execute("INSERT INTO HistorialSesiones (Telefono, EstadoAnterior, EstadoNuevo, OrigenAccion, Descripcion, "
                "ReporteId, FechaAccion, UsuarioId, UsuarioIdPadre) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user.key, transition.estado_anterior, transition.estado_nuevo, transition.origen_accion,
                 transition.descripcion[:500], report_id, ts, *ids))
    claimed = outbox.insert_replies(cur, dialect, message.message_id, user.address, transition.replies, ts,
                                    to_db(dialect, lease_until), ids)
    return reports, claimed
