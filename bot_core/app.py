"""The ASGI app: Meta's webhook, health, and the background loops, built by a factory.

``create_app`` takes every dependency (database, telemetry, understanding,
sender, the pending-migrations probe) so tests, ``botctl serve`` and the Azure
Functions entry point each build the same app with what they have.

With ``background=False`` (Azure Functions, where nothing runs between
invocations) no loop is started: each request sends its own message's replies
right after the commit, and the host calls :meth:`Bot.run_round` on a timer for
what is left (the sweep and the outbox retries), the same code the loops run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import random
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot_core import inbox, outbox, pending_work
from bot_core.dbexec import DbExecutor
from bot_core.errors import DatabaseUnavailable
from bot_core.intent import IntentService, RulesIntentService
from bot_core.outbox import Dispatcher, LocalSender, Sender
from bot_core.processing import Outcome, Processor
from bot_core.settle import Operation, settle
from bot_core.sqltime import utcnow
from bot_core.storage import Database
from bot_core.telemetry import Telemetry
from bot_core.webhook.payload import InboundMessage, PayloadError, StatusUpdate, decode_webhook
from bot_core.webhook.signature import signature_is_valid, verification_challenge

MAX_BODY_BYTES = 3 * 1024 * 1024
HEALTH_MIGRATIONS_TTL_S = 10.0  # /healthz asks the migrations runner at most this often
MAX_MESSAGES_PER_REQUEST = 1000  # Meta batches a handful; more is not a delivery we trust


@dataclass(frozen=True)
class RoundResult:
    """What one bounded round (run_round: the Functions timer) did."""

    swept: int  # inbox rows taken over
    processed: int
    sent: int  # outbox rows attempted


@dataclass(frozen=True)
class BotSettings:
    """The bot's settings as the app factory needs them (from bot_core.config)."""

    app_secret: str
    verify_token: str
    mode: str = "inline"  # inline | queued
    inline_deadline_s: float = 8.0
    lease_seconds: float = 30.0
    # The sweeper and the dispatcher run when a commit in this process or the look-out
    # (bot_core.pending_work, every lease_seconds at most) wakes them. These two make
    # them also poll on their own at a fixed interval, as they used to (None: never).
    sweep_interval_s: float | None = None
    outbox_poll_s: float | None = None
    round_budget_s: float = 20.0  # one run_round() (the Functions timer)
    sweep_batch: int = 200
    idle_minutes: int = 30
    supervisors: frozenset[str] = frozenset()  # phones/BSUIDs that may read every ticket's status
    db_threads: int = 8
    max_body_bytes: int = MAX_BODY_BYTES
    smoke_phone: str | None = None  # botctl smoke's identity: answered, no reports, telemetry marked synthetic
    body_timeout_s: float = 10.0  # a lying Content-Length or a trickling body: 408, connection freed
    sqlite_inline: bool = True  # SQLite transactions on the event loop (see DbExecutor)


class Bot:
    """The running parts behind the routes; no global state."""

    def __init__(self, db: Database, settings: BotSettings, telemetry: Telemetry,
                 intent: IntentService | None = None, sender: Sender | None = None,
                 pending_migrations: Callable[[], list[str]] | None = None,
                 clock: Callable[[], datetime] = utcnow, background: bool = True):
        self.settings = settings
        self.background = background
        self.telemetry = telemetry
        self.clock = clock
        # SQLite has one writer at a time: more threads would only queue on its busy
        # handler, which sleeps. One thread serialises writes without the sleeping.
        threads = 1 if db.dialect == "sqlite" else settings.db_threads
        self.dbx = DbExecutor(db, threads=threads, inline=settings.sqlite_inline)
        self.dispatcher = Dispatcher(self.dbx, sender or LocalSender(), telemetry,
                                     lease_seconds=settings.lease_seconds, poll_interval_s=settings.outbox_poll_s,
                                     clock=clock)
        self.processor = Processor(self.dbx, telemetry, intent or RulesIntentService(),
                                   idle_minutes=settings.idle_minutes, lease_seconds=settings.lease_seconds,
                                   on_committed=self.dispatcher.held_back, clock=clock,
                                   supervisors=settings.supervisors, smoke_phone=settings.smoke_phone)
        self.pending_migrations = pending_migrations
        self._migrations_checked: tuple[float, str | None] | None = None  # (when, detail)
        self._health_detail: str | None = None  # what was last logged
        self._work: asyncio.Event | None = None  # created on the running loop in start()
        self._stopping = False
        self._tasks: list[asyncio.Task] = []
        self._inflight: set[asyncio.Task] = set()
        self._semaphore: asyncio.Semaphore | None = None

    # --- lifecycle -------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._work is None:
            self._work = asyncio.Event()
            self._semaphore = asyncio.Semaphore(self.settings.db_threads * 2)

    async def start(self) -> None:
        self._ensure_started()
        if not self.background:
            return  # the host drives run_round() itself
        self._tasks = [asyncio.create_task(self.dispatcher.run(), name="outbox-dispatcher"),
                       asyncio.create_task(self._inbox_loop(), name="inbox-sweeper"),
                       asyncio.create_task(self._lookout_loop(), name="pending-work-lookout")]
        if self.dbx.db.dialect == "sqlite":
            self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="sqlite-checkpoint"))

    async def stop(self) -> None:
        self._stopping = True
        self.dispatcher.stop()
        if self._work is not None:
            self._work.set()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self.settings.inline_deadline_s)
        for task in list(self._inflight):  # still running past the deadline: their rows are
            task.cancel()                  # leased, and the next sweeper takes them over
        await asyncio.gather(*self._inflight, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for resource in (self.processor.intent, self.dispatcher.sender):
            close = getattr(resource, "aclose", None)
            if close is not None:
                await close()  # AI and Graph API clients: their pooled connections
        self.dbx.close()
        # uvicorn re-raises SIGTERM after a graceful shutdown, so atexit (and logging's
        # own flush) never runs: flush the telemetry sinks here.
        for handler in self.telemetry.logger.handlers:
            handler.flush()

    # --- ingest ----------------------------------------------------------------

    def _register_all(self, cur: Any, messages: list[InboundMessage], now: datetime) -> list[inbox.Registration]:
        lease = now + timedelta(seconds=self.settings.lease_seconds) if self.settings.mode == "inline" else None
        return [inbox.register_inbound(cur, self.dbx.db.dialect, m, now, lease) for m in messages]

    async def _register(self, messages: list[InboundMessage],
                        now: datetime) -> tuple[list[inbox.Registration], list[InboundMessage]]:
        """Register the delivery in one transaction. When that fails for something other than
        an unreachable database, each message is tried alone: one that cannot be stored while
        its neighbours can is skipped with a ``message.invalid`` event instead of sinking the
        delivery into a 503 that Meta would repeat forever. If none can be stored, it raises."""
        try:
            # One message is one statement (inbox.register_inbound): autocommit, no BEGIN/COMMIT.
            record = self.dbx.single if len(messages) == 1 else self.dbx.transaction
            return await record(self._register_all, messages, now), messages
        except DatabaseUnavailable:
            raise
        except Exception as batch_error:
            if len(messages) < 2:
                raise
            registrations, kept, failed = [], [], []
            for message in messages:
                try:
                    registrations += await self.dbx.single(self._register_all, [message], now)
                    kept.append(message)
                except DatabaseUnavailable:
                    raise
                except Exception as exc:
                    failed.append(type(exc).__name__)
            if not kept:
                raise batch_error
            for error_type in failed:
                self.telemetry.emit("message.invalid", reason=f"cannot be stored ({error_type})")
            return registrations, kept

    async def ingest(self, messages: list[InboundMessage], statuses: list[StatusUpdate]) -> tuple[int, int]:
        """Durably record every message (or raise); then process or queue the new ones."""
        now = self.clock()
        if statuses:
            (registrations, messages), _ = await settle(
                self.telemetry,
                Operation("register_inbound", self._register(messages, now)),
                Operation("apply_statuses", self._apply_statuses(statuses, now), fallback=0))
        else:  # the common case: no concurrent work, no tasks to create
            registrations, messages = await self._register(messages, now) if messages else ([], [])
        fresh: list[InboundMessage] = []
        for message, reg in zip(messages, registrations):
            if reg.is_duplicate:
                self.telemetry.emit("dedup.duplicate", telefono=message.user_key, message_id=message.message_id,
                                    retry_count=reg.retry_count)
            else:  # a second copy within this request was registered as a duplicate above
                fresh.append(message)
        if fresh:
            if self.settings.mode == "inline":
                await self._process_inline(fresh)
            elif self._work is not None:
                self._work.set()
        return len(fresh), len(messages) - len(fresh)

    async def _apply_statuses(self, statuses: list[StatusUpdate], now: datetime) -> int:
        if not statuses:
            return 0

        def apply(cur: Any) -> int:
            moved = 0
            for s in statuses:
                code = str(s.errors[0].code) if s.errors and s.errors[0].code is not None else None
                detail = s.errors[0].title if s.errors else None
                moved += outbox.apply_status(cur, self.dbx.db.dialect, s.wamid, s.status, now, code, detail,
                                             s.recipient_user_id, recipient=s.recipient)
            return moved

        return await self.dbx.transaction(apply)

    async def _process_inline(self, messages: list[InboundMessage]) -> None:
        tasks = [self._spawn(self._process_and_send(m)) for m in messages]
        # Answer within the deadline; what is still running finishes in the background
        # (its inbox row is leased, so nobody else takes it meanwhile).
        await asyncio.wait(tasks, timeout=self.settings.inline_deadline_s)

    async def _process_and_send(self, message: InboundMessage) -> Outcome:
        outcome = await self.processor.process(message)
        await self._after_commit(outcome)
        return outcome

    async def _claim_process_send(self, message_id: str) -> Outcome | None:
        outcome = await self.processor.claim_and_process(message_id)
        if outcome is not None:
            await self._after_commit(outcome)
        return outcome

    async def _after_commit(self, outcome: Outcome) -> None:
        """The worker that committed the replies sends those the commit claimed for it. With a
        dispatcher loop (serve) in a task of its own, so the webhook's answer does not wait for
        the send; without one (Functions) before returning, and the replies the commit could
        not claim through the claim path too."""
        if outcome.status != "processed" or not outcome.replies:
            return
        if self.background:
            if outcome.claimed:
                self._spawn(self.dispatcher.send_claimed(outcome.claimed))
            return  # unclaimed replies: the commit woke the dispatcher (Processor.on_committed)
        if outcome.claimed:
            await self.dispatcher.send_claimed(outcome.claimed)
        if outcome.unclaimed:
            await self.dispatcher.send_replies_of(outcome.message_id)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    # --- the sweeper / queued workers ------------------------------------------

    async def sweep_once(self) -> list[asyncio.Task]:
        """Start processing every inbox row that waits for a processor (at most one batch)."""
        self._ensure_started()
        assert self._semaphore is not None
        try:
            ids = await self.dbx.transaction(inbox.claimable_ids, self.dbx.db.dialect, self.clock(),
                                             self.settings.sweep_batch)
        except Exception as exc:
            self.telemetry.emit("operation.degraded", operation="sweep_inbox", error_type=type(exc).__name__)
            return []
        semaphore = self._semaphore
        tasks = []
        for message_id in ids:
            await semaphore.acquire()
            task = self._spawn(self._claim_process_send(message_id))
            task.add_done_callback(lambda _t: semaphore.release())
            tasks.append(task)
        return tasks

    async def _inbox_loop(self) -> None:
        assert self._work is not None
        interval = self.settings.sweep_interval_s  # None: only when woken
        while not self._stopping:
            tasks = await self.sweep_once()
            if len(tasks) < self.settings.sweep_batch:
                try:
                    await asyncio.wait_for(self._work.wait(), interval)
                except asyncio.TimeoutError:
                    pass
                self._work.clear()

    async def _lookout_loop(self) -> None:
        """Wake the sweeper and the dispatcher for work no commit of this process announced.

        One autocommit statement per look (see ``bot_core.pending_work``), at least every
        lease period, sooner when it knows something falls due earlier (a lease expiring,
        a retry time): an idle bot costs a couple of statements a minute.
        """
        assert self._work is not None
        interval = self.settings.lease_seconds
        while not self._stopping:
            wait = interval
            try:
                due = await self.dbx.single(pending_work.next_due)
            except Exception as exc:
                self.telemetry.emit("operation.degraded", operation="sweep_inbox", error_type=type(exc).__name__)
                due = pending_work.NextDue(None, None)
            now = self.clock()
            for when, wake in ((due.inbox, self._work.set), (due.outbox, self.dispatcher.kick)):
                if when is None:
                    continue
                if when <= now:
                    wake()
                else:  # look again when it falls due (plus a little, so it has)
                    wait = min(wait, (when - now).total_seconds() + 0.05)
            await asyncio.sleep(wait)

    async def run_round(self, budget_s: float | None = None) -> "RoundResult":
        """One bounded round of what the loops do: sweep the inbox, then retry the outbox.

        For hosts without a live process (the Azure Functions timer). Processing the
        swept rows sends their replies after each commit; what is left after the
        budget stays leased or pending for the next round.
        """
        budget = self.settings.round_budget_s if budget_s is None else budget_s
        deadline = time.monotonic() + budget
        tasks = await self.sweep_once()
        processed = 0
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=budget)
            processed = sum(1 for t in done if not t.cancelled() and t.exception() is None
                            and t.result() is not None and t.result().status == "processed")
        try:
            sent = await self.dispatcher.drain(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            self.telemetry.emit("operation.degraded", operation="dispatch_outbox", error_type=type(exc).__name__)
            sent = 0
        return RoundResult(swept=len(tasks), processed=processed, sent=sent)

    async def _checkpoint_loop(self) -> None:
        """Move SQLite's WAL into the database off the writer thread.

        A checkpoint inside a commit (SQLite's automatic one) stalls every writer
        behind an fsync; run on its own connection and thread once a second, it
        overlaps with the writes instead (the GIL is released inside SQLite).
        When the WAL file has not changed since the last round, nothing was
        written: the round is skipped without a statement, so an idle bot is quiet.
        """
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(None, self.dbx.db.connect)
        wal = self.dbx.db.url.database + "-wal"
        checkpointed: tuple[int, int] | None = None
        running: asyncio.Future | None = None
        try:
            while not self._stopping:
                await asyncio.sleep(1.0)
                mark = _file_mark(wal)
                if mark == checkpointed:
                    continue
                checkpointed = mark  # writes during the checkpoint change it again
                running = loop.run_in_executor(None, _checkpoint, conn)
                await asyncio.shield(running)
        finally:
            # Cancelled at shutdown: the checkpoint may still run on its thread, and closing
            # the connection under it would crash SQLite. Let it finish first.
            if running is not None and not running.done():
                await asyncio.wait([running])
            conn.close()

    # --- health ----------------------------------------------------------------

    def _health(self, cur: Any) -> None:
        cur.execute("SELECT COUNT(*) FROM MensajesProcesados WHERE 1 = 0")
        cur.fetchall()

    async def health(self) -> str | None:
        """None when healthy, else a short reason code (``database``, ``migrations``) that is
        all a caller learns; the details go to the log, once per change."""
        try:
            await self.dbx.single(self._health)  # a kept connection, no write lock
        except Exception as exc:
            return self._unhealthy("database", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        if self.pending_migrations is not None:
            now = time.monotonic()
            if self._migrations_checked is None or now - self._migrations_checked[0] > HEALTH_MIGRATIONS_TTL_S:
                loop = asyncio.get_running_loop()
                try:
                    pending = await loop.run_in_executor(None, self.pending_migrations)
                    detail = "pending " + ", ".join(pending) if pending else None
                except Exception as exc:
                    detail = f"check failed: {type(exc).__name__}"
                self._migrations_checked = (now, detail)
            detail = self._migrations_checked[1]
            if detail is not None:
                return self._unhealthy("migrations", detail)
        self._health_detail = None
        return None

    def _unhealthy(self, reason: str, detail: str) -> str:
        if detail != self._health_detail:
            self._health_detail = detail
            self.telemetry.emit("operation.degraded", operation=f"healthz.{reason}", error_type=detail)
        return reason


def create_app(db: Database, settings: BotSettings, telemetry: Telemetry, *,
               intent: IntentService | None = None, sender: Sender | None = None,
               pending_migrations: Callable[[], list[str]] | None = None,
               clock: Callable[[], datetime] = utcnow, background: bool = True) -> Starlette:
    """The webhook app. ``background=False``: no loops; requests send their own replies
    after the commit and the host calls ``app.state.bot.run_round()`` on a schedule."""
    bot = Bot(db, settings, telemetry, intent, sender, pending_migrations, clock, background)

    async def verify(request: Request) -> Response:
        challenge = verification_challenge(dict(request.query_params), settings.verify_token)
        if challenge is None:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(challenge)

    async def receive(request: Request) -> Response:
        started = time.perf_counter()
        operation_id = f"{random.getrandbits(128):032x}"  # uuid4 costs a syscall per request
        status, counts = await _handle_post(request)
        telemetry.request(name="POST /webhook", url="/webhook", result_code=status.status_code,
                          duration_ms=(time.perf_counter() - started) * 1000, operation_id=operation_id,
                          messages=counts[0] + counts[1], duplicates=counts[1],
                          synthetic=getattr(request.state, "synthetic", False))
        return status

    async def _handle_post(request: Request) -> tuple[Response, tuple[int, int]]:
        header = request.headers.get("x-hub-signature-256")
        if not header:  # before reading the body: an unsigned sender costs no memory
            return _error(401, "missing X-Hub-Signature-256"), (0, 0)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return _error(413, "body too large"), (0, 0)
        try:
            async with asyncio.timeout(settings.body_timeout_s):
                body = await _read_capped(request, settings.max_body_bytes)
        except TimeoutError:
            return _error(408, "body not received in time"), (0, 0)
        except _TooLarge:
            return _error(413, "body too large"), (0, 0)
        except ClientDisconnect:
            return _error(400, "client disconnected"), (0, 0)
        if not signature_is_valid(body, header, settings.app_secret):
            return _error(403, "invalid signature"), (0, 0)
        try:
            batch = decode_webhook(json.loads(body))
        except (ValueError, RecursionError, PayloadError) as exc:
            reason = str(exc) if isinstance(exc, PayloadError) else "body is not JSON"
            return _error(400, reason), (0, 0)
        if len(batch.messages) > MAX_MESSAGES_PER_REQUEST:
            return _error(413, f"more than {MAX_MESSAGES_PER_REQUEST} messages in one delivery"), (0, 0)
        if batch.messages and all(bot.processor.synthetic(m.telefono) for m in batch.messages):
            request.state.synthetic = True  # a smoke test's delivery: kept out of the request metrics
        for item in batch.invalid:  # skipped items: why, never their content; neighbours still recorded
            telemetry.emit("message.invalid", reason=item.reason)
        try:
            fresh, duplicates = await bot.ingest(batch.messages, batch.statuses)
        except Exception as exc:
            # Not durably recorded: 503 makes Meta deliver it again later.
            telemetry.emit("message.deferred", message_id=",".join(m.message_id for m in batch.messages)[:200],
                           reason=f"ingest failed: {type(exc).__name__}")
            return _error(503, "could not record the delivery; retry"), (0, 0)
        return JSONResponse({"received": fresh, "duplicates": duplicates, "statuses": len(batch.statuses),
                             "skipped": len(batch.invalid)}), (fresh, duplicates)

    async def healthz(request: Request) -> Response:
        reason = await bot.health()
        ok = reason is None
        return JSONResponse({"status": "ok"} if ok else {"status": "unavailable", "reason": reason},
                            status_code=200 if ok else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await bot.start()
        try:
            yield
        finally:
            await bot.stop()

    app = Starlette(routes=[Route("/webhook", verify, methods=["GET"]),
                            Route("/webhook", receive, methods=["POST"]),
                            Route("/healthz", healthz, methods=["GET"])],
                    lifespan=lifespan)
    app.router.redirect_slashes = False  # a redirect would reflect the request's Host header
    app.state.bot = bot
    return app


def _file_mark(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _checkpoint(conn: Any) -> None:
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:
        pass  # busy: the next round will do it


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status)
