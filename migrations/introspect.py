"""Introspected schema (tables, columns, indexes, constraints) for comparing databases.

Used by ``botctl migrate rehearse`` and the round-trip tests: after ``down --to N``
the schema must equal the one before the matching ``up``. The runner's own
history table is left out.
"""

from __future__ import annotations

from typing import Any

from bot_core.errors import ConfigError
from bot_core.storage import Database
from migrations.runner import HISTORY_TABLE

Schema = dict[str, Any]


def introspect(db: Database) -> Schema:
    with db.connection() as conn:
        try:
            if db.dialect == "sqlite":
                return _sqlite(conn)
            if db.dialect == "postgresql":
                return _postgresql(conn)
        finally:
            conn.rollback()
    raise ConfigError(f"schema introspection is not available for {db.dialect} here; "
                      "rehearse on a scratch sqlite or postgresql database")


def _sqlite(conn: Any) -> Schema:
    cur = conn.cursor()
    cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name <> ? ORDER BY name", (HISTORY_TABLE,))
    schema: Schema = {}
    for (table,) in cur.fetchall():
        cols = conn.cursor().execute(f'PRAGMA table_xinfo("{table}")').fetchall()
        columns = {c[1]: {"type": c[2].upper(), "nullable": not c[3], "default": c[4], "pk": c[5]}
                   for c in cols}
        indexes = {}
        for idx in conn.cursor().execute(f'PRAGMA index_list("{table}")').fetchall():
            name, unique, origin, partial = idx[1], bool(idx[2]), idx[3], bool(idx[4])
            idx_cols = [r[2] for r in conn.cursor().execute(f'PRAGMA index_info("{name}")').fetchall()]
            sql = conn.cursor().execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
            indexes[name] = {"columns": idx_cols, "unique": unique, "origin": origin, "partial": partial,
                             "sql": " ".join(sql[0].split()) if sql and sql[0] else None}
        schema[table] = {"columns": columns, "indexes": indexes}
    return schema


def _postgresql(conn: Any) -> Schema:
    cur = conn.cursor()
    cur.execute(
        "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, "
        "datetime_precision, is_nullable, column_default, is_identity FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> ? ORDER BY table_name, ordinal_position",
        (HISTORY_TABLE,))
    schema: Schema = {}
    for t, c, dtype, length, precision, dt_precision, nullable, default, identity in cur.fetchall():
        table = schema.setdefault(t, {"columns": {}, "indexes": {}, "constraints": {}})
        table["columns"][c] = {"type": dtype, "length": length, "precision": precision,
                               "datetime_precision": dt_precision, "nullable": nullable == "YES",
                               "default": default, "identity": identity == "YES"}
    cur.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename <> ?", (HISTORY_TABLE,))
    for t, name, definition in cur.fetchall():
        schema.setdefault(t, {"columns": {}, "indexes": {}, "constraints": {}})["indexes"][name] = definition
    cur.execute("SELECT table_name, constraint_name, constraint_type FROM information_schema.table_constraints "
                "WHERE table_schema = current_schema() AND table_name <> ? AND constraint_type <> 'CHECK' "
                "OR (table_schema = current_schema() AND constraint_type = 'CHECK' "
                "AND constraint_name NOT LIKE '%_not_null')", (HISTORY_TABLE,))
    for t, name, ctype in cur.fetchall():
        if t == HISTORY_TABLE:
            continue
        schema.setdefault(t, {"columns": {}, "indexes": {}, "constraints": {}})["constraints"][name] = ctype
    return schema


def diff(before: Schema, after: Schema) -> list[str]:
    """Human-readable differences; empty when the schemas are the same."""
    out: list[str] = []
    for table in sorted(set(before) | set(after)):
        if table not in after:
            out.append(f"table {table} missing after")
            continue
        if table not in before:
            out.append(f"table {table} added")
            continue
        for part in sorted(set(before[table]) | set(after[table])):
            b, a = before[table].get(part, {}), after[table].get(part, {})
            for name in sorted(set(b) | set(a)):
                if b.get(name) != a.get(name):
                    out.append(f"{table}.{part}.{name}: {b.get(name)!r} -> {a.get(name)!r}")
    return out
