"""Up and down of migrations 001-003 on a million sessions and a million processed messages.

    python bench/migrate_scale.py [--rows 1000000] [--dialect sqlite|postgresql|all]

Prints seconds per step and rows/s, and each step's ratio against a baseline
measured in the same run on the same data: one full-table UPDATE of SesionesChat
(what "touching every row once" costs on this machine right now).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot_core.storage import open_database  # noqa: E402
from migrations.runner import MigrationRunner  # noqa: E402

PG = os.environ.get("BOTCTL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

SEED = {
    "sqlite": [
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        "INSERT INTO SesionesChat (Telefono, Estado, ContadorMensajes) SELECT '52155' || i, 'INICIO', i % 7 FROM n",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        "INSERT INTO MensajesProcesados (MensajeId) SELECT 'wamid.' || i FROM n",
    ],
    "postgresql": [
        "INSERT INTO SesionesChat (Telefono, Estado, ContadorMensajes) "
        "SELECT '52155' || i, 'INICIO', i % 7 FROM generate_series(1, {rows}) AS i",
        "INSERT INTO MensajesProcesados (MensajeId) SELECT 'wamid.' || i FROM generate_series(1, {rows}) AS i",
    ],
}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(dialect: str, url: str, rows: int) -> None:
    db = open_database(url, busy_timeout_ms=60_000)
    runner = MigrationRunner(db)
    runner.up(to=0)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            for sql in SEED[dialect]:
                cur.execute(sql.format(rows=rows))

    def baseline():
        with db.connection() as conn:
            with db.transaction(conn) as cur:
                cur.execute("UPDATE SesionesChat SET ContadorMensajes = ContadorMensajes + 1")

    base = timed(baseline)
    print(f"\n{dialect}: {rows:,} sessions + {rows:,} processed messages; "
          f"baseline full-table UPDATE {base:.2f}s")
    print(f"{'step':<28}{'seconds':>9}{'rows/s':>14}{'x baseline':>12}")
    steps = [("up --to 1", lambda: runner.up(to=1)), ("up --to 2", lambda: runner.up(to=2)),
             ("up --to 3", lambda: runner.up(to=3)), ("down --to 2", lambda: runner.down(to=2)),
             ("down --to 1", lambda: runner.down(to=1)), ("down --to 0", lambda: runner.down(to=0))]
    for name, fn in steps:
        seconds = timed(fn)
        print(f"{name:<28}{seconds:>9.2f}{rows / seconds:>14,.0f}{seconds / base:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dialect", default="all", choices=["sqlite", "postgresql", "all"])
    args = parser.parse_args()
    if args.dialect in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.db", args.rows)
    if args.dialect in ("postgresql", "all"):
        import pyodbc

        name = f"botctl_bench_{uuid.uuid4().hex[:8]}"
        admin = pyodbc.connect("DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;DATABASE=postgres;UID=postgres;",
                               autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE {name}")
        try:
            run("postgresql", PG.rsplit("/", 1)[0] + "/" + name, args.rows)
        finally:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
