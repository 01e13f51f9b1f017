"""``botctl migrate plan``: the exact script a run would execute, without connecting.

For mssql the output is sqlcmd-ready (run it with ``sqlcmd -b`` so an error
stops it): batches separated by GO, each migration in its own transaction with
XACT_ABORT on, followed by the history row the runner would write.
"""

from __future__ import annotations

from bot_core import __version__
from bot_core.errors import ConfigError
from migrations.runner import _HISTORY_COLUMNS, _HISTORY_DDL, HISTORY_TABLE
from migrations.scripts import Migration, Script, load_migrations, split_statements


def _literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def select_scripts(migrations: list[Migration], direction: str, start: int | None,
                   to: int | None) -> list[Script]:
    if direction == "up":
        return [m.up for m in migrations
                if (start is None or m.version >= start) and (to is None or m.version <= to)]
    if to is None:
        raise ConfigError("plan --direction down needs --to (the version to go back to)")
    scripts = []
    for m in sorted(migrations, key=lambda m: m.version, reverse=True):
        if m.version > to and (start is None or m.version <= start):
            if m.down is None:
                raise ConfigError(f"version {m.version_label} has no down script")
            scripts.append(m.down)
    return scripts


def _history_insert(script: Script, direction: str, dialect: str) -> str:
    now = {"mssql": "SYSUTCDATETIME()", "postgresql": "(now() AT TIME ZONE 'utc')",
           "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}[dialect]
    user = {"mssql": "SUSER_SNAME()", "postgresql": "current_user", "sqlite": "'plan'"}[dialect]
    host = {"mssql": "HOST_NAME()", "postgresql": "'plan'", "sqlite": "'plan'"}[dialect]
    values = [_literal(script.version_label), _literal(script.description), _literal(direction),
              _literal(script.name), _literal(script.checksum if direction == "up" else None), "1",
              now, now, "0", user, host, _literal(__version__)]
    table = f"dbo.{HISTORY_TABLE}" if dialect == "mssql" else HISTORY_TABLE
    return f"INSERT INTO {table} ({', '.join(_HISTORY_COLUMNS)}) VALUES ({', '.join(values)})"


def build_plan(dialect: str, direction: str = "up", start: int | None = None, to: int | None = None,
               migrations: list[Migration] | None = None) -> str:
    if direction not in ("up", "down"):
        raise ConfigError("--direction must be up or down")
    migrations = migrations if migrations is not None else load_migrations(dialect)
    scripts = select_scripts(migrations, direction, start, to)
    out = [f"-- botctl migrate plan: {dialect} {direction}, {len(scripts)} migration(s)"]
    if dialect == "mssql":
        out += ["SET XACT_ABORT ON;", "GO", _HISTORY_DDL["mssql"] + ";", "GO"]
        for script in scripts:
            out += [f"-- {script.name} (sha256 {script.checksum})", "BEGIN TRANSACTION;", "GO"]
            for batch in split_statements(script.text, dialect):
                out += [batch.text.rstrip(), "GO" if batch.repeat == 1 else f"GO {batch.repeat}"]
            out += [_history_insert(script, direction, dialect) + ";", "GO", "COMMIT TRANSACTION;", "GO"]
        return "\n".join(out) + "\n"
    out += [_HISTORY_DDL[dialect] + ";"]
    for script in scripts:
        out += ["", f"-- {script.name} (sha256 {script.checksum})",
                "BEGIN IMMEDIATE;" if dialect == "sqlite" else "BEGIN;"]
        out += [s.text.rstrip() + ";" for s in split_statements(script.text, dialect)]
        out += [_history_insert(script, direction, dialect) + ";", "COMMIT;"]
    return "\n".join(out) + "\n"
