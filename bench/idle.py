"""An idle bot is quiet, a busy one prompt: statements per idle minute and reply latency, before and after.

    python bench/idle.py [--idle-seconds 60] [--rate 100] [--duration 20] [--skip-postgres]

"Before" is today's code run with the polling the bot used to do, passed explicitly
(``BOTCTL_OUTBOX_POLL_SECONDS=1``: an outbox claim transaction every second;
``BOTCTL_SWEEP_INTERVAL_SECONDS=2``: an inbox sweep transaction every two seconds).
"After" is the default: the dispatcher and the sweeper run when a commit in their
process wakes them, and one autocommit look-out statement (bot_core/pending_work.py)
runs at most every ``lease_seconds`` (30 s). One thing the settings cannot bring back:
the old SQLite checkpoint ran every second whether or not anything had been written;
today's skips the round while the WAL file is unchanged, in both columns.

Each server is `botctl serve`'s app (``cli.serve_app:create_app_from_env``, one uvicorn
worker) in a child process. Statements are counted where they run:

* PostgreSQL: a private cluster with ``pg_stat_statements`` preloaded (track = all,
  utility statements included, so BEGIN and COMMIT count), one database per server,
  reset at the start of the idle window and read at its end;
* SQLite: the child installs ``sqlite3``'s trace callback on every connection it opens
  and logs each statement the library runs (BEGIN and COMMIT included).

All four servers idle at the same time, for ``--idle-seconds`` after a warm-up.
Then each one gets ``--rate`` messages/s (open model) for ``--duration`` seconds, and
the reply latency of each message is read from the database: from the inbox row's
``FechaCreacion`` (ingest) to its first reply's ``FechaEnvio`` (the sender returned).
Targets: at most 4 statements per idle minute per process; reply p99 no worse.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.child import running  # noqa: E402

SECRET = "bench-idle-secret"
BEFORE = {"BOTCTL_OUTBOX_POLL_SECONDS": "1", "BOTCTL_SWEEP_INTERVAL_SECONDS": "2"}
AFTER: dict[str, str] = {}
TARGET_PER_MINUTE = 4.0
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|SAVEPOINT|RELEASE)\b", re.I)


# --- the child: serve's app, with SQLite statements traced ------------------------------------

def serve_child(port: int, trace_path: str) -> None:
    import sqlite3

    import uvicorn

    trace = open(trace_path, "a", buffering=1, encoding="utf-8")
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: trace.write(f"{time.time():.3f}\t{' '.join(sql.split())[:160]}\n"))
        return conn

    sqlite3.connect = traced_connect
    uvicorn.run("cli.serve_app:create_app_from_env", factory=True, host="127.0.0.1", port=port, workers=1,
                log_level="warning", access_log=False)


@contextmanager
def child(db_url: str, workdir: str, settings: dict[str, str]) -> Iterator[tuple[str, str]]:
    from tests.support.fake_http import free_port

    port = free_port()
    trace = os.path.join(workdir, f"trace-{port}.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    env.update({"BOTCTL_APP_SECRET": SECRET, "BOTCTL_VERIFY_TOKEN": "bench", "BOTCTL_DB": db_url,
                "BOTCTL_HASH_KEY": "b" * 32, "BOTCTL_SERVE_HOST": "127.0.0.1",
                "BOTCTL_TELEMETRY_FILE": os.path.join(workdir, f"telemetry-{port}.jsonl"), "PYTHONPATH": ROOT,
                **settings})
    url = f"http://127.0.0.1:{port}"
    with running([sys.executable, os.path.abspath(__file__), "--serve", str(port), trace], env, workdir,
                 url + "/webhook"):
        yield url, trace


# --- counting -------------------------------------------------------------------------------

def sqlite_statements(trace: str, since: float, until: float) -> list[str]:
    out = []
    with open(trace, encoding="utf-8") as fh:
        for line in fh:
            stamp, _, sql = line.rstrip("\n").partition("\t")
            if since <= float(stamp) < until:
                out.append(sql)
    return out


class PgCounter:
    def __init__(self, port: int):
        import pyodbc

        self.conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={port};DATABASE=postgres;"
                                   "UID=postgres;", autocommit=True)

    def reset(self) -> None:
        self.conn.cursor().execute("SELECT pg_stat_statements_reset()").fetchall()

    def statements(self, dbname: str) -> list[str]:
        cur = self.conn.cursor()
        cur.execute("SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE d.datname = ?", (dbname,))
        return [" ".join(q.split())[:160] for q, calls in cur.fetchall() for _ in range(int(calls))]


def split(statements: list[str]) -> tuple[int, int]:
    control = sum(1 for s in statements if TRANSACTION_CONTROL.match(s))
    return len(statements) - control, control


# --- latency --------------------------------------------------------------------------------

def reply_latencies_ms(db_url: str, run_id: str) -> list[float]:
    from bot_core.sqltime import from_db
    from bot_core.storage import open_database

    db = open_database(db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT p.FechaCreacion, MIN(s.FechaEnvio) FROM MensajesProcesados p "
                    "JOIN MensajesSalientes s ON s.MensajeOrigenId = p.MensajeId "
                    "WHERE p.MensajeId LIKE ? GROUP BY p.MensajeId, p.FechaCreacion", (f"wamid.LT{run_id}.%",))
        rows = cur.fetchall()
    return sorted((from_db(sent) - from_db(ingest)).total_seconds() * 1000 for ingest, sent in rows
                  if sent is not None)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def load(url: str, db_url: str, rate: float, duration: float, expected_timeout: float = 60.0) -> dict[str, Any]:
    from ops.loadtest.runner import LoadGenerator, LoadtestOptions
    from ops.loadtest.traffic import TrafficSpec

    spec = TrafficSpec(rate=rate, duration_s=duration, warmup_s=2.0, gap_s=2.0)
    generator = LoadGenerator(LoadtestOptions(url + "/webhook", SECRET, spec, timeout_s=10.0))
    summary = asyncio.run(generator.run())
    expected = sum(1 for d in generator.plan if d.acked)  # every acknowledged message gets a reply
    deadline = time.monotonic() + expected_timeout
    latencies = reply_latencies_ms(db_url, spec.run_id)
    while len(latencies) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        latencies = reply_latencies_ms(db_url, spec.run_id)
    return {"replies": len(latencies), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "expected": expected, "errors": summary["errors"]}


# --- the run ---------------------------------------------------------------------------------

def prepare(db_url: str) -> None:
    from bot_core.demo import seed_demo_equipment
    from bot_core.storage import open_database
    from migrations.runner import MigrationRunner

    db = open_database(db_url)
    MigrationRunner(db).up()
    seed_demo_equipment(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeat", action="store_true", help="two latency runs per server (after, before, "
                        "before, after); the worse p50/p99 of the two is shown")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # the child: PORT TRACE
    args = parser.parse_args()
    if args.serve:
        serve_child(int(args.serve[0]), args.serve[1])
        return
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        targets: list[tuple[str, str, str, dict[str, str]]] = []  # (dialect, label, db_url, settings)
        for label, settings in (("before", BEFORE), ("after", AFTER)):
            targets.append(("SQLite", label, f"sqlite:///{tmp}/idle-{label}.db", settings))
        pg_counter = None
        if not args.skip_postgres:
            import pyodbc

            from tests.e2e.servers import PrivatePostgres

            pg = PrivatePostgres().init()
            pg.start("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all",
                     "pg_stat_statements.track_utility=on", "pg_stat_statements.max=10000")
            stack.callback(pg.destroy)
            admin = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg.port};"
                                   "DATABASE=postgres;UID=postgres;", autocommit=True)
            admin.cursor().execute("CREATE EXTENSION pg_stat_statements")
            for label, settings in (("before", BEFORE), ("after", AFTER)):
                admin.cursor().execute(f"CREATE DATABASE idle_{label}")
                targets.append(("PostgreSQL", label, f"postgresql://postgres@127.0.0.1:{pg.port}/idle_{label}",
                                settings))
            admin.close()
            pg_counter = PgCounter(pg.port)
        for _, _, db_url, _ in targets:
            prepare(db_url)
        servers = [stack.enter_context(child(db_url, tmp, settings)) for _, _, db_url, settings in targets]

        # 1. Idle: every server at once, nothing sent.
        time.sleep(args.warmup_seconds)
        if pg_counter:
            pg_counter.reset()
        since = time.time()
        time.sleep(args.idle_seconds)
        until = time.time()
        idle: dict[tuple[str, str], tuple[int, int]] = {}
        samples: dict[tuple[str, str], list[str]] = {}
        for (dialect, label, db_url, _), (_, trace) in zip(targets, servers):
            if dialect == "SQLite":
                statements = sqlite_statements(trace, since, until)
            else:
                statements = pg_counter.statements(db_url.rsplit("/", 1)[1])
            idle[dialect, label] = split(statements)
            samples[dialect, label] = sorted(set(statements))
        minutes = (until - since) / 60

        # 2. Busy: one server at a time.
        busy = {}
        # Interleaved, after before before after per dialect, so neither setting always goes first.
        order = [0, 1, 1, 0] if args.repeat else [1, 0]
        for i in range(0, len(targets), 2):
            for j in order:
                (dialect, label, db_url, _), (url, _) = targets[i + j], servers[i + j]
                busy.setdefault((dialect, label), []).append(load(url, db_url, args.rate, args.duration))
        busy = {key: {"replies": sum(r["replies"] for r in runs), "p50": max(r["p50"] for r in runs),
                      "p99": max(r["p99"] for r in runs)} for key, runs in busy.items()}

    print(f"\nidle window {until - since:.0f} s per server (all at once), then {args.rate:g} msgs/s for "
          f"{args.duration:g} s each; machine load {os.getloadavg()[0]:.1f}")
    print(f"{'server':<24}{'stmts/idle min':>16}{'+ BEGIN/COMMIT':>16}{'replies':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for (dialect, label), (statements, control) in idle.items():
        b = busy[dialect, label]
        print(f"{dialect + ' ' + label:<24}{statements / minutes:>16.1f}{control / minutes:>16.1f}"
              f"{b['replies']:>9}{b['p50']:>9.1f}{b['p99']:>9.1f}")
    print("\nidle statements (after):")
    for (dialect, label), distinct in samples.items():
        if label == "after":
            for sql in distinct:
                print(f"  {dialect}: {sql}")
    verdicts = []
    for dialect in sorted({d for d, _ in idle}):
        statements, control = idle[dialect, "after"]
        per_minute = (statements + control) / minutes
        before_p99, after_p99 = busy[dialect, "before"]["p99"], busy[dialect, "after"]["p99"]
        verdicts.append(f"{dialect}: {per_minute:.1f} statements per idle minute, BEGIN/COMMIT included "
                        f"(target <= {TARGET_PER_MINUTE:g}): {'met' if per_minute <= TARGET_PER_MINUTE else 'NOT met'}; "
                        f"reply p99 after/before {after_p99 / before_p99:.2f}")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
