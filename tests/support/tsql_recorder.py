"""A stand-in for SQL Server that records every statement it is sent (the seam of the T-SQL test).

SQL Server cannot run here. ``RecordingDatabase`` is a ``Database`` of the ``mssql`` dialect
whose connections record each statement exactly as pyodbc would send it, and answer as
SQL Server would (rowcounts, ``OUTPUT`` rows, result sets) by running the statement's
meaning on a real SQLite database:

* most statements are translated by sqlglot (``read="tsql"``, ``write="sqlite"``):
  ``TOP (n)`` becomes ``LIMIT n``, table hints go, ``OUTPUT inserted.X`` becomes ``RETURNING X``;
* ``MERGE`` is carried out as SQL Server defines it: the ``USING`` row is matched on the
  ``ON`` key, then the ``WHEN MATCHED`` update or the ``WHEN NOT MATCHED`` insert runs, and
  the ``OUTPUT`` columns of the affected row are the result set;
* SQL Server's own objects (``sp_getapplock``, ``sys.tables``, the history table's DDL) are
  answered the way SQL Server answers them; other catalog queries (``sys.columns``,
  ``sys.indexes``… of schema introspection) answer no rows, as on a database without
  our tables (the migration DDL is not carried out, see below), and ``SERVERPROPERTY``
  a version string marked as the stand-in's;
* the statements of the T-SQL migration scripts are recorded but not carried out (they are
  DDL for a schema the SQLite side already has; SQL Server would answer "done").

A statement that cannot be carried out raises, naming it: the recorder never answers
something it did not understand.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from bot_core.storage import Database
from bot_core.storage.database import _SqliteConnection
from bot_core.storage.url import DatabaseURL
from migrations.tsql_check import split_batches


class Untranslatable(Exception):
    pass


@dataclass
class Recording:
    statements: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sql: str) -> None:
        with self.lock:
            self.statements.append(sql)

    def distinct(self) -> list[str]:
        with self.lock:
            return list(dict.fromkeys(self.statements))


def migration_statements(root: Path) -> set[str]:
    out = set()
    for path in (root / "migrations" / "mssql").glob("*.sql"):
        out.update(batch.text for batch in split_batches(path.read_text(encoding="utf-8")))
    return out


@dataclass(frozen=True)
class RecordingDatabase(Database):
    """``Database(mssql)`` whose connections record and answer through a SQLite file."""

    sqlite_path: str = ""
    recording: Recording = field(default_factory=Recording)
    ddl: frozenset = frozenset()  # statements recorded and answered as done, not carried out

    @classmethod
    def over(cls, sqlite_path: str, ddl: Iterable[str] = ()) -> "RecordingDatabase":
        return cls(url=DatabaseURL("mssql", "recorded", host="sqlserver.invalid"), sqlite_path=sqlite_path,
                   ddl=frozenset(ddl))

    def connect(self) -> "RecordingConnection":
        return RecordingConnection(self)


class RecordingConnection:
    def __init__(self, db: RecordingDatabase):
        self.db = db
        self.raw = sqlite3.connect(db.sqlite_path, timeout=10, isolation_level=None, check_same_thread=False)
        self.sqlite = _SqliteConnection(self.raw)  # explicit BEGIN/COMMIT, as the SQLite dialect does
        self.autocommit = False

    def cursor(self) -> "RecordingCursor":
        return RecordingCursor(self)

    def _begin(self) -> None:
        if not self.autocommit and not self.raw.in_transaction:
            self.raw.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.sqlite.commit()

    def rollback(self) -> None:
        self.sqlite.rollback()

    def close(self) -> None:
        self.sqlite.rollback()
        self.sqlite.close()


def _param(value: Any) -> Any:
    if isinstance(value, datetime):  # DATETIME2: naive UTC, stored as the SQLite side's text
        return value.isoformat(sep=" ", timespec="milliseconds")
    return value


class RecordingCursor:
    def __init__(self, conn: RecordingConnection):
        self.conn = conn
        self.rows: list[tuple] = []
        self.description: Any = None
        self.rowcount = -1

    # --- pyodbc's surface ---------------------------------------------------------

    def execute(self, sql: str, *params: Any) -> "RecordingCursor":
        if len(params) == 1 and isinstance(params[0], (tuple, list)):
            params = tuple(params[0])
        self.conn.db.recording.add(sql)
        self._answer(sql, [_param(p) for p in params])
        return self

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        self.conn.db.recording.add(sql)
        total = 0
        for params in seq:
            self._answer(sql, [_param(p) for p in params])
            total += max(self.rowcount, 0)
        self.rowcount = total

    def fetchone(self) -> tuple | None:
        return self.rows.pop(0) if self.rows else None

    def fetchall(self) -> list[tuple]:
        rows, self.rows = self.rows, []
        return rows

    def nextset(self) -> bool:
        return False

    def close(self) -> None:
        self.rows = []

    # --- answering like SQL Server ---------------------------------------------------

    def _result(self, cur: sqlite3.Cursor) -> None:
        self.description = cur.description
        self.rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        self.rowcount = cur.rowcount if cur.description is None else len(self.rows)

    def _set(self, rows: list[tuple], description: Any = (("result",),), rowcount: int = -1) -> None:
        self.rows, self.description, self.rowcount = rows, description, rowcount

    def _answer(self, sql: str, params: list[Any]) -> None:
        raw = self.conn.raw
        text = sql.strip()
        upper = text.upper()
        if text in self.conn.db.ddl:
            self._set([], None)
            return
        if upper.startswith("SET ") and ";" not in text.rstrip(";"):
            self._set([], None)  # SET XACT_ABORT ON / SET NOCOUNT ON: session options
            return
        if "SP_GETAPPLOCK" in upper:
            self._set([(0,)])  # granted at once
            return
        if "SP_RELEASEAPPLOCK" in upper:
            self._set([], None)
            return
        self.conn._begin()
        if upper.startswith("IF OBJECT_ID(") and "CREATE TABLE" in upper:
            from migrations.runner import _HISTORY_DDL

            raw.execute(_HISTORY_DDL["sqlite"])
            self._set([], None)
            return
        if re.match(r"SELECT 1 FROM sys\.tables WHERE name = \?$", text):
            self._result(raw.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", params))
            return
        if "SERVERPROPERTY(" in upper:
            self._set([("16.0 (recording stand-in, not SQL Server)",)])
            return
        if re.search(r"\bFROM\s+sys\.", text, re.I):
            self._set([], (("catalog",),), 0)
            return
        if upper.startswith("MERGE"):
            self._merge(text, params)
            return
        self._result(raw.execute(_translate(text), params))

    def _merge(self, sql: str, params: list[Any]) -> None:
        import sqlglot
        from sqlglot import exp

        merge = sqlglot.parse_one(sql, read="tsql")
        raw = self.conn.raw
        target, source_alias = merge.this.name, merge.args["using"].alias
        pending = list(params)
        source: dict[str, Any] = {}
        for column in merge.args["using"].this.expressions:
            if not isinstance(column.this, exp.Placeholder):
                raise Untranslatable(f"USING of a MERGE with a non-parameter column: {sql}")
            source[column.alias] = pending.pop(0)
        on = merge.args["on"]
        if not isinstance(on, exp.EQ):
            raise Untranslatable(f"MERGE ON other than one equality: {sql}")
        key, key_value = on.this.name, source[on.expression.name]
        matched = raw.execute(f"SELECT 1 FROM {target} WHERE {key} = ?", (key_value,)).fetchone() is not None
        for when in merge.args["whens"].expressions:
            action = when.args["then"]
            values: list[Any] = []
            rendered: list[str] = []

            def bind(node: exp.Expression) -> str:
                # Parameters in text order; source columns become parameters with their value.
                for item in node.find_all(exp.Placeholder, exp.Column, bfs=False):
                    if isinstance(item, exp.Placeholder):
                        values.append(pending.pop(0))
                    elif item.table == source_alias:
                        values.append(source[item.name])
                node = node.transform(lambda n: exp.Placeholder() if isinstance(n, exp.Column) and
                                      n.table == source_alias else n)
                node = node.transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) else n)
                return node.sql(dialect="sqlite")

            if isinstance(action, exp.Update):
                rendered = [bind(e) for e in action.expressions]
                statement = f"UPDATE {target} SET {', '.join(rendered)} WHERE {key} = ?"
            elif isinstance(action, exp.Insert):
                columns = ", ".join(c.name for c in action.this.expressions)
                rendered = [bind(e) for e in action.expression.expressions]
                statement = f"INSERT INTO {target} ({columns}) VALUES ({', '.join(rendered)})"
            else:
                raise Untranslatable(f"MERGE action {type(action).__name__}: {sql}")
            if bool(when.args.get("matched")) == matched:
                raw.execute(statement, values + ([key_value] if isinstance(action, exp.Update) else []))
        returning = merge.args.get("returning")
        if returning is not None:
            columns = ", ".join(c.name for c in returning.expressions)
            self._result(raw.execute(f"SELECT {columns} FROM {target} WHERE {key} = ?", (key_value,)))
            self.rowcount = 1
        else:
            self._set([], None, 1)


def _translate(sql: str) -> str:
    import sqlglot

    try:
        (out,) = sqlglot.transpile(sql, read="tsql", write="sqlite")
    except Exception as exc:  # noqa: BLE001 - named in the error
        raise Untranslatable(f"{type(exc).__name__}: {sql}") from None
    # OUTPUT inserted.A, inserted.B: every column of the RETURNING list loses the prefix.
    head, sep, returning = (re.split(r"(\bRETURNING\b)", out, maxsplit=1, flags=re.I) + ["", ""])[:3]
    return head + sep + re.sub(r"\binserted\.", "", returning, flags=re.I)
