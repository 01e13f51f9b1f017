"""Introspected schema (tables, columns, indexes, constraints) for comparing databases.

Used by ``botctl migrate rehearse`` and the round-trip tests: after ``down --to N``
the schema must equal the one before the matching ``up``. The runner's own
history table is left out.
"""

from __future__ import annotations

import re
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
            if db.dialect == "mssql":
                return _mssql(conn)
        finally:
            conn.rollback()
    raise ConfigError(f"schema introspection is not available for {db.dialect}")


def _sqlite(conn: Any) -> Schema:
    cur = conn.cursor()
    cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name <> ? ORDER BY name", (HISTORY_TABLE,))
    schema: Schema = {}
    for table, table_sql in cur.fetchall():
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
        constraints = _sqlite_named_constraints(table_sql or "")
        for fk in conn.cursor().execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
            # (id, seq, table, from, to, on_update, on_delete, match): named or not, every foreign key
            constraints[f"foreign key {fk[3]} -> {fk[2]}.{fk[4]}"] = f"ON UPDATE {fk[5]} ON DELETE {fk[6]}"
        schema[table] = {"columns": columns, "indexes": indexes, "constraints": constraints}
    return schema


_NAMED = re.compile(r'\bCONSTRAINT\s+["`\[]?(\w+)["`\]]?\s+(PRIMARY\s+KEY|UNIQUE|CHECK|FOREIGN\s+KEY|REFERENCES|'
                    r'DEFAULT|NOT\s+NULL|COLLATE)\b', re.IGNORECASE)


def _sqlite_named_constraints(table_sql: str) -> dict[str, str]:
    """``CONSTRAINT name KIND clause`` of a CREATE TABLE: kind and clause, whitespace normalised.

    SQLite keeps no catalogue of CHECK constraints or constraint names: the table's SQL is
    the only place they live. The clause runs to the next comma or closing parenthesis at
    the same depth, or the next ``CONSTRAINT``.
    """
    out = {}
    for m in _NAMED.finditer(table_sql):
        depth, quote, end, rest = 0, "", len(table_sql), table_sql[m.end():]
        for i, ch in enumerate(rest):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            elif depth == 0 and (ch in ",)" or rest[i:i + 11].upper() == "CONSTRAINT "):
                end = i
                break
        clause = " ".join(rest[:end].split())
        out[m.group(1)] = " ".join([" ".join(m.group(2).upper().split()), clause]).strip()
    return out


def _postgresql(conn: Any) -> Schema:
    cur = conn.cursor()
    cur.execute(
        "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, "
        "datetime_precision, is_nullable, column_default, is_identity FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> ? ORDER BY table_name, ordinal_position",
        (HISTORY_TABLE,))
    schema: Schema = {}

    def table(name: str) -> dict[str, Any]:
        return schema.setdefault(name, {"columns": {}, "indexes": {}, "constraints": {}})

    for t, c, dtype, length, precision, dt_precision, nullable, default, identity in cur.fetchall():
        table(t)["columns"][c] = {"type": dtype, "length": length, "precision": precision,
                                  "datetime_precision": dt_precision, "nullable": nullable == "YES",
                                  "default": default, "identity": identity == "YES"}
    cur.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename <> ?", (HISTORY_TABLE,))
    for t, name, definition in cur.fetchall():
        table(t)["indexes"][name] = definition
    # Every constraint with its definition (a changed CHECK expression is a difference); NOT NULL
    # (contype 'n' on PostgreSQL 18) is the columns' nullability already.
    cur.execute("SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
                "JOIN pg_class rel ON rel.oid = con.conrelid JOIN pg_namespace ns ON ns.oid = rel.relnamespace "
                "WHERE ns.nspname = current_schema() AND con.contype <> 'n' AND rel.relname <> ?",
                (HISTORY_TABLE,))
    for t, name, definition in cur.fetchall():
        table(t)["constraints"][name] = definition
    return schema


_MSSQL_COLUMNS = """SELECT t.name, c.name, ty.name, c.max_length, c.precision, c.scale, c.is_nullable,
    dc.name, dc.definition, c.is_identity
FROM sys.tables t
JOIN sys.columns c ON c.object_id = t.object_id
JOIN sys.types ty ON ty.user_type_id = c.user_type_id
LEFT JOIN sys.default_constraints dc ON dc.object_id = c.default_object_id
WHERE t.name <> ?
ORDER BY t.name, c.column_id"""

_MSSQL_INDEXES = """SELECT t.name, i.name, i.is_unique, i.type_desc, i.filter_definition,
    STRING_AGG(CAST(col.name AS NVARCHAR(MAX)) + CASE WHEN ic.is_included_column = 1 THEN N' (included)' ELSE N'' END,
               N', ') WITHIN GROUP (ORDER BY ic.is_included_column, ic.key_ordinal, ic.index_column_id)
FROM sys.indexes i
JOIN sys.tables t ON t.object_id = i.object_id
JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
JOIN sys.columns col ON col.object_id = ic.object_id AND col.column_id = ic.column_id
WHERE i.name IS NOT NULL AND t.name <> ?
GROUP BY t.name, i.name, i.is_unique, i.type_desc, i.filter_definition"""

# Named constraints with what they say: CHECK and DEFAULT definitions, FOREIGN KEY targets, keys.
_MSSQL_CONSTRAINTS = """SELECT t.name, o.name, o.type_desc,
    COALESCE(cc.definition, dc.definition, OBJECT_NAME(fk.referenced_object_id), N'')
FROM sys.objects o
JOIN sys.tables t ON t.object_id = o.parent_object_id
LEFT JOIN sys.check_constraints cc ON cc.object_id = o.object_id
LEFT JOIN sys.default_constraints dc ON dc.object_id = o.object_id
LEFT JOIN sys.foreign_keys fk ON fk.object_id = o.object_id
WHERE o.type IN ('C', 'D', 'F', 'PK', 'UQ') AND t.name <> ?"""


def _mssql(conn: Any) -> Schema:
    cur = conn.cursor()
    schema: Schema = {}

    def table(name: str) -> dict[str, Any]:
        return schema.setdefault(name, {"columns": {}, "indexes": {}, "constraints": {}})

    cur.execute(_MSSQL_COLUMNS, (HISTORY_TABLE,))
    for t, c, dtype, length, precision, scale, nullable, default_name, default, identity in cur.fetchall():
        table(t)["columns"][c] = {"type": dtype, "length": length, "precision": precision, "scale": scale,
                                  "nullable": bool(nullable), "default": default,
                                  "default_name": default_name, "identity": bool(identity)}
    cur.execute(_MSSQL_INDEXES, (HISTORY_TABLE,))
    for t, name, unique, kind, where, columns in cur.fetchall():
        table(t)["indexes"][name] = f"{'UNIQUE ' if unique else ''}{kind} ({columns})" + (
            f" WHERE {where}" if where else "")
    cur.execute(_MSSQL_CONSTRAINTS, (HISTORY_TABLE,))
    for t, name, kind, definition in cur.fetchall():
        table(t)["constraints"][name] = f"{kind} {definition}".strip()
    return schema


PART_LABELS = {"columns": "column", "indexes": "index", "constraints": "constraint"}


def diff(before: Schema, after: Schema) -> list[str]:
    """Human-readable differences, one line each; empty when the schemas are the same.

    ``table T missing after`` / ``table T added``; for columns, indexes and constraints
    ``column T.C missing after`` / ``... added``, and for one that changed, one line per
    attribute that differs: ``column T.C: nullable True -> False``, ``index T.IX: columns
    ['A'] -> ['A', 'B']``, ``constraint T.CK: 'CHECK (A >= 0)' -> 'CHECK (A >= 1)'``.
    """
    out: list[str] = []
    for table in sorted(set(before) | set(after)):
        if table not in after:
            out.append(f"table {table} missing after")
            continue
        if table not in before:
            out.append(f"table {table} added")
            continue
        for part in sorted(set(before[table]) | set(after[table])):
            label = PART_LABELS.get(part, part)
            b, a = before[table].get(part, {}), after[table].get(part, {})
            for name in sorted(set(b) | set(a)):
                where = f"{label} {table}.{name}"
                if name not in a:
                    out.append(f"{where} missing after")
                elif name not in b:
                    out.append(f"{where} added")
                elif isinstance(b[name], dict) and isinstance(a[name], dict):
                    out.extend(f"{where}: {key} {b[name].get(key)!r} -> {a[name].get(key)!r}"
                               for key in sorted(set(b[name]) | set(a[name])) if b[name].get(key) != a[name].get(key))
                elif b[name] != a[name]:
                    out.append(f"{where}: {b[name]!r} -> {a[name]!r}")
    return out
