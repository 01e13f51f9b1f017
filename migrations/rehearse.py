"""Rollback rehearsal: up -> down -> up on a scratch database, comparing schemas.

After ``down --to N`` the introspected schema must equal the one recorded right
after ``up --to N``, and the final ``up`` must reproduce the first one. Any dialect
the runner speaks, SQL Server included: the evidence records the dialect and the
server's version, so the checklist can tell a rehearsal on the release's target
from one on a stand-in.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from bot_core import __version__
from bot_core.errors import ConfigError
from bot_core.storage import Database
from migrations.introspect import diff, introspect
from migrations.runner import MigrationRunner


def rehearse(db: Database, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    runner = MigrationRunner(db, progress=progress)
    if runner.state().applied or introspect(db):
        raise ConfigError(f"rehearse needs an empty scratch database; {db.url} already has tables")
    versions = [m.version for m in runner.migrations]
    after_up: dict[int, Any] = {}
    steps: list[dict[str, Any]] = []
    for v in versions:
        runner.up(to=v)
        after_up[v] = introspect(db)
        steps.append({"action": f"up --to {v:03d}", "differences": []})
    for v in reversed(versions[:-1]):
        runner.down(to=v)
        differences = diff(after_up[v], introspect(db))
        steps.append({"action": f"down --to {v:03d}", "differences": differences})
    runner.up()
    steps.append({"action": "up", "differences": diff(after_up[versions[-1]], introspect(db))})
    identical = all(not s["differences"] for s in steps)
    return {
        "check": "rollback-rehearsal",
        "dialect": db.dialect,
        "server_version": server_version(db),
        "tool_version": __version__,
        "database": db.url.redacted(),
        "versions": [f"{v:03d}" for v in versions],
        "steps": steps,
        "identical": identical,
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }


SERVER_VERSION_SQL = {
    "sqlite": "SELECT sqlite_version()",
    "postgresql": "SHOW server_version",
    "mssql": "SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(128)) + N' ' + "
             "CAST(SERVERPROPERTY('Edition') AS NVARCHAR(128))",
}


def server_version(db: Database) -> str:
    """The database server's own version string (SQLite: the library's)."""
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(SERVER_VERSION_SQL[db.dialect])
        row = cur.fetchone()
        conn.rollback()
    return str(row[0]) if row and row[0] is not None else "unknown"
