"""Fault injection under load: each scenario runs real `botctl serve` processes, loads them with
the load generator, injects its faults meanwhile, then verifies the database.

    python -m tests.reliability            # all scenarios, prints the table (make reliability)

A scenario passes with 0 lost and 0 duplicated. A 5xx is fine only when the
delivery was redelivered and processed (the generator redelivers 5xx and
broken connections like Meta does; "lost" counts what never got through).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from ops.loadtest.runner import LoadGenerator, LoadtestOptions
from ops.loadtest.traffic import TrafficSpec
from ops.loadtest.verify import verify_run
from tests.conftest import ROOT
from tests.e2e.servers import APP_SECRET, BotServer, PrivatePostgres

COLUMNS = ("scenario", "requests", "faults", "5xx", "lost", "duplicated", "reports dup", "replies lost",
           "replies dup", "unexpected", "reports off", "misaddressed")


@dataclass
class Row:
    scenario: str
    requests: int = 0
    faults: int = 0
    http_5xx: int = 0
    lost: int = 0
    duplicated: int = 0
    reports_dup: int = 0
    replies_lost: int = 0
    replies_dup: int = 0
    unexpected: int = 0  # inbox rows for ids the run never sent
    reports_off: int = 0  # reports missing for confirmed conversations, or for conversations never confirmed
    misaddressed: int = 0  # messages answered to someone other than their sender
    notes: list[str] = field(default_factory=list)

    COUNTS = ("requests", "http_5xx", "lost", "duplicated", "reports_dup", "replies_lost", "replies_dup",
              "unexpected", "reports_off", "misaddressed")

    @classmethod
    def from_verify(cls, name: str, summary: dict, plan: list, result: dict, faults: int) -> "Row":
        """A row from a load run and its verification: every verify violation counts against it."""
        never_acked = sum(1 for d in plan if d.attempts and not d.acked)
        return cls(name, summary["requests"], faults, summary["http_5xx"],
                   lost=result["lost"] + result["unprocessed"] + never_acked,
                   duplicated=result["duplicates"], reports_dup=result["duplicate_reports"],
                   replies_lost=result["replies_lost"], replies_dup=result["duplicate_replies"],
                   unexpected=result["unexpected"], reports_off=result["reports_off"],
                   misaddressed=result["misaddressed"],
                   notes=list(result["violations"]))

    @property
    def ok(self) -> bool:
        return not any(getattr(self, f) for f in self.COUNTS if f not in ("requests", "http_5xx"))

    def cells(self) -> list[str]:
        return [self.scenario, str(self.requests), str(self.faults), str(self.http_5xx),
                *(str(getattr(self, f)) for f in self.COUNTS[2:])]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


class Suite:
    """Shared resources: a private PostgreSQL cluster (stoppable) and a scratch folder."""

    def __init__(self, rate: float = 40.0, duration: float = 8.0):
        self.rate, self.duration = rate, duration
        self.tmp = Path(tempfile.mkdtemp(prefix="botctl-reliability-"))
        self.pg: PrivatePostgres | None = None

    def postgres(self) -> PrivatePostgres:
        if self.pg is None:
            self.pg = PrivatePostgres().init()
            self.pg.start()
        return self.pg

    def pg_database(self) -> str:
        import pyodbc

        pg = self.postgres()
        name = f"rel_{uuid.uuid4().hex[:8]}"
        admin = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg.port};DATABASE=postgres;"
                               "UID=postgres;", autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE {name}")
        admin.close()
        return f"postgresql://postgres@127.0.0.1:{pg.port}/{name}"

    def sqlite_database(self) -> str:
        return f"sqlite:///{self.tmp / f'rel_{uuid.uuid4().hex[:8]}.db'}"

    def close(self) -> None:
        if self.pg is not None:
            self.pg.destroy()

    # --- one load run with faults ------------------------------------------------

    def prepare(self, db_url: str) -> None:
        db = open_database(db_url)
        MigrationRunner(db).up()
        seed_demo_equipment(db)

    def server(self, db_url: str, workers: int = 2, **env: str) -> BotServer:
        base = {"BOTCTL_LEASE_SECONDS": "3", "BOTCTL_SWEEP_INTERVAL_SECONDS": "0.5"}
        base.update(env)
        workdir = self.tmp / uuid.uuid4().hex[:6]
        workdir.mkdir()
        return BotServer(db_url, workdir, workers=workers, env=base).start()

    @contextmanager
    def serving(self, workers: int = 2, **env: str) -> Iterator[tuple[str, BotServer]]:
        """A fresh, migrated PostgreSQL database with `botctl serve` on it."""
        db = self.pg_database()
        self.prepare(db)
        server = self.server(db, workers=workers, **env)
        try:
            yield db, server
        finally:
            server.stop()

    def options(self, url: str, **spec_overrides: Any) -> LoadtestOptions:
        """The generator's settings for one run: Meta-like redelivery, 5 s timeouts."""
        spec = TrafficSpec(rate=spec_overrides.pop("rate", self.rate),
                           duration_s=spec_overrides.pop("duration_s", self.duration), gap_s=1.0,
                           seed=random.randrange(1 << 30), **spec_overrides)
        return LoadtestOptions(url + "/webhook", APP_SECRET, spec, timeout_s=5.0, max_redeliveries=10,
                               redelivery_base_s=0.5)

    def load(self, url: str, fault: Callable[[], Awaitable[int]] | None = None,
             **spec_overrides: Any) -> tuple[dict, list, str, int]:
        options = self.options(url, **spec_overrides)
        spec = options.spec

        async def main():
            generator = LoadGenerator(options)
            fault_task = asyncio.create_task(fault()) if fault else None
            summary = await generator.run()
            faults = await fault_task if fault_task else 0
            return summary, generator.plan, faults

        summary, plan, faults = asyncio.run(main())
        return summary, plan, spec.run_id, faults

    def row(self, name: str, db_url: str, summary: dict, plan: list, run_id: str, faults: int) -> Row:
        result = verify_run(open_database(db_url), plan, run_id, drain_timeout_s=30)
        return Row.from_verify(name, summary, plan, result, faults)


async def _every(seconds: float, until: float, action: Callable[[], Any]) -> int:
    loop = asyncio.get_running_loop()
    end = loop.time() + until
    count = 0
    while loop.time() + seconds < end:
        await asyncio.sleep(seconds)
        if await loop.run_in_executor(None, action):
            count += 1
    return count


# --- scenarios ----------------------------------------------------------------------


def worker_sigkill(suite: Suite) -> Row:
    with suite.serving() as (db, server):
        def kill_one() -> bool:
            pids = [p for p in server.worker_pids() if _is_uvicorn_worker(p)]
            if not pids:
                return False
            os.kill(random.choice(pids), signal.SIGKILL)
            return True

        summary, plan, run_id, faults = suite.load(server.url, lambda: _every(2.0, suite.duration, kill_one))
        return suite.row("1 worker SIGKILLed every 2 s (PostgreSQL, 2 workers)", db, summary, plan, run_id, faults)


def _is_uvicorn_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline


def postgres_restart(suite: Suite) -> Row:
    pg = suite.postgres()
    with suite.serving() as (db, server):
        async def restart() -> int:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(suite.duration / 3)
            await loop.run_in_executor(None, pg.stop)
            await asyncio.sleep(2.0)
            await loop.run_in_executor(None, pg.start)
            return 1

        summary, plan, run_id, faults = suite.load(server.url, restart)
        return suite.row("2 PostgreSQL stopped 2 s and restarted", db, summary, plan, run_id, faults)


def duplicate_storm(suite: Suite) -> Row:
    with suite.serving() as (db, server):
        summary, plan, run_id, _ = suite.load(server.url, dup_ratio=0.3)
        dups = sum(1 for d in plan if d.duplicate)
        return suite.row("5 duplicate storm: 30 % redelivered, half concurrently", db, summary, plan, run_id, dups)


def same_phone_storm(suite: Suite) -> Row:
    with suite.serving() as (db, server):
        summary, plan, run_id, _ = suite.load(server.url, rate=10, duration_s=3.0, burst=200, burst_phones=5)
        row = suite.row("6 same-phone storm: 200 concurrent messages, 5 phones", db, summary, plan, run_id, 200)
        _check_versions(db, run_id, row)
        return row


def _check_versions(db_url: str, run_id: str, row: Row) -> None:
    """No lost update: each burst phone's session version = its history rows = its messages."""
    db = open_database(db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT s.Telefono, s.Version, COUNT(h.HistorialId) FROM SesionesChat s "
                    "JOIN HistorialSesiones h ON h.Telefono = s.Telefono WHERE s.Telefono LIKE '53%' "
                    "GROUP BY s.Telefono, s.Version")
        for telefono, version, history in cur.fetchall():
            if int(version) != int(history):
                row.duplicated += abs(int(version) - int(history))
                row.notes.append(f"phone …{telefono[-4:]}: version {version} != {history} history rows")
        conn.rollback()


def sqlite_two_processes(suite: Suite) -> Row:
    db = suite.sqlite_database()
    suite.prepare(db)
    first = suite.server(db, workers=1)
    second = suite.server(db, workers=1)
    try:
        async def both():
            generators = [LoadGenerator(suite.options(server.url, rate=suite.rate / 2)) for server in (first, second)]
            summaries = await asyncio.gather(*(g.run() for g in generators))
            return [(s, g.plan, g.o.spec.run_id) for s, g in zip(summaries, generators)]

        rows = [suite.row("7", db, *r, 0) for r in asyncio.run(both())]
        merged = Row("7 SQLite: two serve processes on one file", faults=0)
        for r in rows:
            for f in Row.COUNTS:
                setattr(merged, f, getattr(merged, f) + getattr(r, f))
            merged.notes += r.notes
        for log in (first.log, second.log):
            if "database is locked" in log.read_text(errors="replace"):
                merged.notes.append(f"'database is locked' escaped in {log.name}")
        return merged
    finally:
        first.stop()
        second.stop()


def migrate_concurrently_and_killed(suite: Suite) -> Row:
    db = suite.pg_database()
    MigrationRunner(open_database(db)).up(to=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    cmd = [sys.executable, "-m", "cli.app", "migrate", "up", "--db", db, "-q"]
    # The fault comes from outside, as a killed deploy would: this test holds a lock on the table
    # 003 alters, so the first runner stops inside 003 (its transaction open, the migration lock
    # held); a second runner is started and seen polling for the migration lock; then the first
    # is SIGKILLed and the table lock let go.
    holder = open_database(db).connect()
    holder.cursor().execute("LOCK TABLE MensajesProcesados IN ACCESS SHARE MODE")
    killed = subprocess.Popen(cmd[:-1], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    other = None
    try:
        for line in killed.stderr:
            if "applying 003" in line:
                break
        _wait_for(db, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event_type = 'Lock' AND query ILIKE '%MensajesProcesados%'")
        busy = _backend_pids(db)  # the holder, the blocked first runner
        other = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_lock_polling(db, busy)
        killed.send_signal(signal.SIGKILL)
        killed.wait(60)
    finally:
        holder.rollback()
        holder.close()
    other_rc = other.wait(60) if other is not None else -1
    later = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    validate = subprocess.run([sys.executable, "-m", "cli.app", "migrate", "validate", "--db", db, "-q"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    states = [s.state for s in MigrationRunner(open_database(db)).status()]
    row = Row("8 migrate up twice at once, one killed halfway", requests=3,
              faults=1 if killed.returncode == -signal.SIGKILL else 0)
    if other_rc != 0 or later.returncode != 0 or validate.returncode != 0 or not states or set(states) != {"applied"}:
        row.lost = 1
        row.notes.append(f"rc other={other_rc} later={later.returncode} validate={validate.returncode} "
                         f"states={states}")
    return row


def _wait_for(db: str, count_query: str, timeout_s: float = 30) -> None:
    """Poll a COUNT(*) query on ``db`` until it is positive (a process reached the state it names)."""
    deadline = time.monotonic() + timeout_s
    with open_database(db).connection() as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            cur = conn.cursor()
            cur.execute(count_query)
            if cur.fetchone()[0] > 0:
                return
            time.sleep(0.05)
    raise TimeoutError(f"never seen: {count_query}")


def _backend_pids(db: str) -> set[int]:
    with open_database(db).connection() as conn:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return {int(r[0]) for r in cur.fetchall()}


def _wait_for_lock_polling(db: str, exclude: set[int], timeout_s: float = 30) -> None:
    """Wait until a new backend polls for the migration lock.

    The poll is one ``SELECT pg_try_advisory_lock`` then a ``COMMIT`` every 0.1 s, so the
    backend's last query is mostly the COMMIT: a backend counts as polling when it is seen
    in the lock query, or seen finishing statements three times without ever waiting on a
    lock (a runner that had got past the lock would block on the held table instead).
    """
    deadline = time.monotonic() + timeout_s
    seen: dict[int, set] = {}
    with open_database(db).connection() as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            cur = conn.cursor()
            cur.execute("SELECT pid, query, state_change, wait_event_type FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            for pid, query, state_change, wait_type in cur.fetchall():
                if int(pid) in exclude or wait_type == "Lock":
                    continue
                if "pg_try_advisory_lock" in (query or ""):
                    return
                if (query or "").strip().upper() == "COMMIT":
                    seen.setdefault(int(pid), set()).add(state_change)
                    if len(seen[int(pid)]) >= 3:
                        return
            time.sleep(0.03)
    raise TimeoutError("never saw a second runner polling for the migration lock")


def _telemetry_events(server: BotServer) -> list[dict]:
    import json

    return [json.loads(line)["customDimensions"] for line in server.telemetry.read_text().splitlines() if line]


def ai_provider_hangs(suite: Suite) -> Row:
    from tests.support.fake_http import FakeAI

    with FakeAI("ok", answer={"intent": "REPORTE_REFRIGERADOR", "confidence": 0.9, "codigo_sap": "4001234",
                              "problema": "no enfría"}) as fake, \
            suite.serving(BOTCTL_AI_PROVIDER="openai", BOTCTL_AI_BASE_URL=fake.url + "/v1", BOTCTL_AI_MODEL="m",
                          BOTCTL_AI_API_KEY="sk-reliability", BOTCTL_AI_DEADLINE_DETECT_MS="300",
                          BOTCTL_AI_DEADLINE_EXTRACT_MS="300", BOTCTL_AI_BREAKER_FAILURES="4",
                          BOTCTL_AI_BREAKER_RESET_SECONDS="1",
                          BOTCTL_AI_BREAKER_HALF_OPEN_SUCCESSES="1") as (db, server):
        async def hang_for_a_stretch() -> int:
            await asyncio.sleep(1.0)
            fake.mode = "hang"
            await asyncio.sleep(suite.duration / 2)
            fake.mode = "ok"
            return 1

        summary, plan, run_id, faults = suite.load(server.url, hang_for_a_stretch)
        row = suite.row("3 AI provider hangs for a stretch, then recovers", db, summary, plan, run_id, faults)
    transitions = [(e["from_state"], e["to_state"]) for e in _telemetry_events(server)
                   if e["event_name"] == "breaker.transition"]
    if ("CLOSED", "OPEN") not in transitions or ("HALF_OPEN", "CLOSED") not in transitions:
        row.lost += 1
        row.notes.append(f"the breaker did not open and close: {transitions}")
    else:
        row.notes.append(f"breaker: {len(transitions)} transitions, opened and closed")
    return row


def graph_api_errors(suite: Suite) -> Row:
    import itertools

    from tests.support.fake_http import FakeGraph

    errors = itertools.cycle([131000, ("http", 503), 130429, 131056, 133004])
    with FakeGraph() as graph, \
            suite.serving(BOTCTL_WHATSAPP_TOKEN="EAAG-reliability", BOTCTL_WHATSAPP_PHONE_NUMBER_ID="1234567890",
                          BOTCTL_WHATSAPP_BASE_URL=graph.url) as (db, server):
        async def errors_for_a_stretch() -> int:
            await asyncio.sleep(1.0)
            graph.default = lambda body: next(errors)
            await asyncio.sleep(suite.duration / 2)
            graph.default = "ok"
            return 1

        summary, plan, run_id, faults = suite.load(server.url, errors_for_a_stretch)
        row = suite.row("4 Graph API 5xx / 130429 / 131056 for a stretch", db, summary, plan, run_id, faults)
        unsent = _wait_outbox_sent(db, run_id, timeout_s=60)
    rows = _outbox_count(db, run_id)
    failed_sends = len(graph.requests) - graph.sent
    row.replies_lost += unsent
    row.replies_dup += max(0, graph.sent - rows)  # a reply sent successfully twice
    row.notes.append(f"{failed_sends} Graph API errors answered, {graph.sent} sends for {rows} replies")
    return row


def _outbox_count(db_url: str, run_id: str, where: str = "") -> int:
    db = open_database(db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM MensajesSalientes WHERE MensajeOrigenId LIKE ? {where}",
                    (f"wamid.LT{run_id}.%",))
        value = int(cur.fetchone()[0])
        conn.rollback()
        return value


def _wait_outbox_sent(db_url: str, run_id: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        unsent = _outbox_count(db_url, run_id, "AND Estado <> 'ENVIADO'")
        if unsent == 0 or time.monotonic() > deadline:
            return unsent
        time.sleep(0.5)


SCENARIOS: dict[str, Callable[[Suite], Row]] = {
    "worker_sigkill": worker_sigkill,
    "postgres_restart": postgres_restart,
    "ai_provider_hangs": ai_provider_hangs,
    "graph_api_errors": graph_api_errors,
    "duplicate_storm": duplicate_storm,
    "same_phone_storm": same_phone_storm,
    "sqlite_two_processes": sqlite_two_processes,
    "migrate_killed": migrate_concurrently_and_killed,
}


def run_all(names: list[str] | None = None) -> list[Row]:
    suite = Suite()
    rows = []
    try:
        for name, scenario in SCENARIOS.items():
            if names and name not in names:
                continue
            started = time.monotonic()
            rows.append(scenario(suite))
            rows[-1].notes.append(f"{time.monotonic() - started:.0f}s")
    finally:
        suite.close()
    return sorted(rows, key=lambda r: r.scenario)
