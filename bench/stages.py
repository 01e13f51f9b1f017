"""Where a message's cost goes: CPU microseconds per stage, and statements on the server.

    python bench/stages.py [--messages 600] [--concurrency 1] [--skip-postgres]

For SQLite and PostgreSQL, one run each: the real app (built from settings the
way `botctl serve` builds it, JSON-lines telemetry on) runs in a child process
under uvicorn; this process sends signed deliveries to it (each a text message
with one reply, "mi refri 4001234 no enfría" against the demo equipment), waits
until every reply is recorded as delivered, and reads:

* CPU per message by stage, measured inside the child with per-thread CPU
  clocks (``time.thread_time_ns``) around the functions of each stage, each
  stage's own time only (a nested stage's time is its own). "HTTP + signature"
  is the rest of the child's CPU (``time.process_time``): uvicorn, Starlette,
  the signature, the event loop, the hops to the database threads.
* PostgreSQL statements per message counted by the server itself: the bench
  starts a private cluster with ``pg_stat_statements`` preloaded
  (track = all, utility statements included: BEGIN, COMMIT, SAVEPOINT,
  DEALLOCATE...), resets it after the warm-up and reads it after the replies
  are recorded. The bench's own probe connects as another role and is left out.
  Also the server's CPU (all backends, from /proc) per message.
* The same for duplicate deliveries of messages already processed.

The child's timers cost about 1 µs per timed call (a few dozen per message),
included in the figures. CPU time, not wall time: a busy machine slows the run
but changes these figures much less than it changes throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.child import running  # noqa: E402

SECRET = "bench-secret"
PROBE_ROLE = "stages_probe"

# Report order; "HTTP + signature" is computed as the rest of the child's CPU.
STAGES = ("HTTP + signature", "decode", "ingest transaction", "understanding", "step", "commit transaction",
          "outbox claim", "send", "result", "telemetry")
# Database work by the function DbExecutor runs (its __name__): which stage it is.
TRANSACTIONS = {
    "_register_all": "ingest transaction",
    "_commit": "commit transaction",
    "claim_batch": "outbox claim",
    "record_results": "result",
}


# --- the child: the app under uvicorn, with stage clocks ----------------------------


class StageClock:
    """Exclusive CPU time per stage, per thread (a stage nested in another is its own)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.cpu_ns: dict[str, int] = defaultdict(int)
            self.calls: dict[str, int] = defaultdict(int)
            self.process_ns = time.process_time_ns()
            self.wall = time.monotonic()

    def _stack(self) -> list[list[Any]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def enter(self, stage: str) -> list[Any]:
        frame = [stage, time.thread_time_ns(), 0]
        self._stack().append(frame)
        return frame

    def leave(self, frame: list[Any]) -> None:
        elapsed = time.thread_time_ns() - frame[1]
        stack = self._stack()
        stack.pop()
        if stack:
            stack[-1][2] += elapsed
        with self._lock:
            self.cpu_ns[frame[0]] += elapsed - frame[2]
            self.calls[frame[0]] += 1

    def timed(self, stage: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        name_of = stage if callable(stage) else (lambda *a, **k: stage)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            frame = self.enter(name_of(*args, **kwargs))
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave(frame)

        return wrapper

    def timed_async(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        # Exact only for coroutines that finish without suspending (LocalSender.send does).
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            frame = self.enter(stage)
            try:
                return await fn(*args, **kwargs)
            finally:
                self.leave(frame)

        return wrapper

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"cpu_ns": dict(self.cpu_ns), "calls": dict(self.calls),
                    "process_ns": time.process_time_ns() - self.process_ns, "wall_s": time.monotonic() - self.wall}


def install_clocks(clock: StageClock) -> None:
    """Wrap each stage's functions where the app looks them up."""
    import json as json_module

    import bot_core.app as app_module
    import bot_core.processing as processing
    from bot_core.dbexec import DbExecutor
    from bot_core.intent import RulesIntentService
    from bot_core.outbox import LocalSender
    from bot_core.telemetry import Telemetry

    def transaction_stage(_self: Any, fn: Callable[..., Any], *args: Any) -> str:
        name = getattr(fn, "__name__", "?")
        return TRANSACTIONS.get(name, f"other transaction: {name}")

    # Transactions and single autocommit statements, on the pool or inline (SQLite).
    for name in ("run_transaction", "_run_inline", "run_single", "_single_inline"):
        setattr(DbExecutor, name, clock.timed(transaction_stage, getattr(DbExecutor, name)))
    app_module.json = types.SimpleNamespace(**{**vars(json_module), "loads": clock.timed("decode", json.loads)})
    app_module.decode_webhook = clock.timed("decode", app_module.decode_webhook)
    app_module.signature_is_valid = clock.timed("signature", app_module.signature_is_valid)
    app_module._checkpoint = clock.timed("sqlite checkpoint (background)", app_module._checkpoint)
    # The processor reads the rules for every state before its transaction (rules_in_every_state),
    # and only in the transaction for a state it did not foresee (rules).
    RulesIntentService.rules = staticmethod(clock.timed("understanding", RulesIntentService.rules))
    RulesIntentService.rules_in_every_state = staticmethod(
        clock.timed("understanding", RulesIntentService.rules_in_every_state))
    processing.step = clock.timed("step", processing.step)
    LocalSender.send = clock.timed_async("send", LocalSender.send)
    Telemetry.emit = clock.timed("telemetry", Telemetry.emit)


def with_control(app: Any, clock: StageClock) -> Any:
    """The app plus two bench routes: POST /bench/reset and GET /bench/stats."""
    async def control(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            if scope["path"] == "/bench/reset":
                clock.reset()
            body = json.dumps(clock.snapshot()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return control


def serve_child(port: int) -> None:
    import uvicorn

    from bot_core.asgi import create_app_from_config
    from bot_core.config import load_config

    clock = StageClock()
    install_clocks(clock)
    app = with_control(create_app_from_config(load_config(), "127.0.0.1"), clock)
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                  lifespan="on")).run()


# --- the parent: databases, load, figures ------------------------------------------


def deliveries(n: int, run_id: str) -> list[tuple[bytes, dict[str, str]]]:
    from bot_core.webhook import meta
    from ops.loadtest.traffic import DEFAULT_EQUIPMENT, FIRST_TEXT

    text = FIRST_TEXT.format(equipment=DEFAULT_EQUIPMENT)  # the template: with it, the equipment is looked up
    out = []
    for i in range(n):
        payload = meta.envelope([meta.text_message(f"57{int(run_id, 16) % 10**4:04d}{i:06d}", text,
                                                   wamid=f"wamid.ST{run_id}.{i}")])
        body, headers = meta.signed_body(payload, SECRET)
        out.append((body, headers))
    return out


async def send_all(url: str, batch: list[tuple[bytes, dict[str, str]]], concurrency: int) -> None:
    import httpx

    queue = list(reversed(batch))
    async with httpx.AsyncClient(timeout=30) as client:
        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                response = await client.post(url + "/webhook", content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


@contextmanager
def child_server(db_url: str, workdir: str) -> Iterator[str]:
    from tests.support.fake_http import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    env.update({"BOTCTL_APP_SECRET": SECRET, "BOTCTL_VERIFY_TOKEN": "bench", "BOTCTL_DB": db_url,
                "BOTCTL_TELEMETRY_FILE": os.path.join(workdir, "telemetry.jsonl"), "PYTHONPATH": ROOT})
    url = f"http://127.0.0.1:{port}"
    with running([sys.executable, os.path.abspath(__file__), "--serve", str(port)], env, workdir,
                 url + "/bench/stats"):
        yield url


class Probe:
    """Counts replies recorded as delivered, on its own connection (left out of the statement counts)."""

    def __init__(self, db_url: str, pg_port: int | None = None):
        self.dialect = "postgresql" if pg_port else "sqlite"
        if pg_port:
            import pyodbc

            dbname = db_url.rsplit("/", 1)[1]
            self.conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg_port};"
                                       f"DATABASE={dbname};UID={PROBE_ROLE};", autocommit=True)
        else:
            import sqlite3

            self.conn = sqlite3.connect(db_url.split("///", 1)[1], timeout=5)

    def delivered(self) -> int:
        cur = self.conn.cursor()
        cur.execute("SELECT COUNT(*) FROM MensajesSalientes WHERE Estado = 'ENTREGADO'")
        value = int(cur.fetchone()[0])
        cur.close()
        if self.dialect == "sqlite":
            self.conn.commit()
        return value

    def wait_delivered(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.delivered() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.delivered()} of {count} replies delivered")
            time.sleep(0.05)


class PgStats:
    """pg_stat_statements and backend CPU of the private cluster."""

    def __init__(self, pg: Any, dbname: str):
        import pyodbc

        self.pg, self.dbname = pg, dbname
        self.conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg.port};"
                                   "DATABASE=postgres;UID=postgres;", autocommit=True)

    def _one(self, sql: str) -> Any:
        cur = self.conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        cur.close()
        return rows

    def reset(self) -> None:
        self._one("SELECT pg_stat_statements_reset()")
        self.cpu_ticks = self.backend_ticks()

    def statements(self) -> list[tuple[str, int]]:
        rows = self._one(
            "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            f"JOIN pg_roles r ON r.oid = s.userid WHERE d.datname = '{self.dbname}' AND r.rolname <> '{PROBE_ROLE}' "
            "ORDER BY s.calls DESC")
        evicted = self._one("SELECT dealloc FROM pg_stat_statements_info")[0][0]
        if evicted:
            raise RuntimeError("pg_stat_statements evicted entries: the counts are incomplete")
        return [(" ".join(q.split()), int(c)) for q, c in rows]

    def backend_ticks(self) -> int:
        """utime + stime of the cluster's processes (every backend and helper)."""
        with open(os.path.join(self.pg.data, "postmaster.pid")) as fh:
            postmaster = int(fh.readline())
        out = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
        total = 0
        for pid in [postmaster, *map(int, out.split())]:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass  # a backend that ended meanwhile: its ticks are lost (its connection was not ours)
        return total

    def server_cpu_us(self) -> float:
        return (self.backend_ticks() - self.cpu_ticks) * 1e6 / os.sysconf("SC_CLK_TCK")


def measure(url: str, batch: list, concurrency: int, probe: Probe, expect_delivered: int,
            pg: PgStats | None) -> dict[str, Any]:
    import httpx

    if pg is not None:
        pg.reset()
    httpx.post(url + "/bench/reset", timeout=10)
    asyncio.run(send_all(url, batch, concurrency))
    probe.wait_delivered(expect_delivered)
    stats = httpx.get(url + "/bench/stats", timeout=10).json()
    result: dict[str, Any] = {"stats": stats, "n": len(batch)}
    if pg is not None:
        result["statements"] = pg.statements()
        result["server_cpu_us"] = pg.server_cpu_us()
    return result


def run_dialect(db_url: str, workdir: str, n: int, warmup: int, concurrency: int,
                pg_cluster: Any = None) -> dict[str, Any]:
    from bot_core.demo import seed_demo_equipment
    from bot_core.storage import open_database
    from migrations.runner import MigrationRunner

    db = open_database(db_url)
    MigrationRunner(db).up()
    seed_demo_equipment(db)
    pg = None
    if pg_cluster is not None:
        dbname = db_url.rsplit("/", 1)[1]
        with db.connection() as conn:
            with db.transaction(conn) as cur:
                cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PROBE_ROLE}")
        pg = PgStats(pg_cluster, dbname)
    run_id = uuid.uuid4().hex[:8].upper()
    batch = deliveries(warmup + n, run_id)
    with child_server(db_url, workdir) as url:
        probe = Probe(db_url, pg_cluster.port if pg_cluster else None)
        asyncio.run(send_all(url, batch[:warmup], concurrency))
        probe.wait_delivered(warmup)
        fresh = measure(url, batch[warmup:], concurrency, probe, warmup + n, pg)
        dups = measure(url, batch[warmup:warmup + min(n, 300)], concurrency, probe, warmup + n, pg)
    return {"fresh": fresh, "duplicates": dups}


def stage_table(result: dict[str, Any]) -> dict[str, float]:
    stats, n = result["stats"], result["n"]
    cpu = {k: v / 1000 / n for k, v in stats["cpu_ns"].items()}
    total = stats["process_ns"] / 1000 / n
    signature = cpu.pop("signature", 0.0)
    table = {stage: cpu.pop(stage, 0.0) for stage in STAGES[1:]}
    table.update(cpu)  # anything else the child timed (other transactions, background work)
    table["HTTP + signature"] = total - sum(table.values())
    table["  of which signature"] = signature
    table["total (process CPU)"] = total
    return table


def classify(query: str) -> str:
    q = query.upper()
    for marker, label in (("SAVEPOINT", "savepoint"), ("DEALLOCATE", "deallocate"), ("PG_CATALOG", "catalog"),
                          ("PG_TYPE", "catalog"), ("BEGIN", "transaction control"),
                          ("COMMIT", "transaction control"), ("ROLLBACK", "transaction control")):
        if q.startswith(marker) or (marker in ("PG_CATALOG", "PG_TYPE") and marker in q):
            return label
    return "application"


def print_results(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    for phase in ("fresh", "duplicates"):
        title = "new text messages, one reply each" if phase == "fresh" else "duplicate deliveries"
        tables = {name: stage_table(results[name][phase]) for name in names}
        rows = list(dict.fromkeys(k for t in tables.values() for k in t))
        print(f"\nCPU µs per message by stage ({title})")
        print(f"{'stage':<40}" + "".join(f"{name:>14}" for name in names))
        for stage in rows:
            print(f"{stage:<40}" + "".join(f"{tables[name].get(stage, 0.0):>14.1f}" for name in names))
        for name in names:
            r = results[name][phase]
            if "statements" not in r:
                continue
            n = r["n"]
            statements = r["statements"]
            total = sum(c for _, c in statements)
            kinds: dict[str, int] = defaultdict(int)
            for query, calls in statements:
                kinds[classify(query)] += calls
            print(f"\n{name}: {total / n:.2f} statements per message on the server "
                  f"({', '.join(f'{k} {v / n:.2f}' for k, v in sorted(kinds.items()))}); "
                  f"server CPU {r['server_cpu_us'] / n:.0f} µs per message")
            for query, calls in statements:
                print(f"  {calls / n:6.2f}  {query[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=600, help="measured messages per database")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight (1: one at a time)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve)
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run_dialect(f"sqlite:///{tmp}/stages.db", tmp, args.messages, args.warmup,
                                        args.concurrency)
        if not args.skip_postgres:
            results["PostgreSQL"] = run_postgres(tmp, args)
    print(f"\n{args.messages} messages per database after {args.warmup} of warm-up, "
          f"{args.concurrency} in flight; machine load {os.getloadavg()[0]:.1f}")
    print_results(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def run_postgres(tmp: str, args: argparse.Namespace) -> dict[str, Any]:
    import pyodbc

    from tests.e2e.servers import PrivatePostgres

    pg = PrivatePostgres().init()
    pg.start("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all",
             "pg_stat_statements.track_utility=on", "pg_stat_statements.max=10000")
    try:
        admin = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg.port};DATABASE=postgres;"
                               "UID=postgres;", autocommit=True)
        admin.cursor().execute("CREATE EXTENSION pg_stat_statements")
        admin.cursor().execute(f"CREATE ROLE {PROBE_ROLE} LOGIN")
        admin.cursor().execute("CREATE DATABASE stages")
        admin.close()
        return run_dialect(f"postgresql://postgres@127.0.0.1:{pg.port}/stages", tmp, args.messages, args.warmup,
                           args.concurrency, pg)
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
