"""Runs DB-API work for the async webhook, one transaction per call.

pyodbc blocks on the network: its calls run on a bounded thread pool, one
connection per thread. SQLite is a library call of a few hundred microseconds,
where the hop to a thread and back costs as much as the work; with ``inline``
SQLite transactions run on the event loop itself, on one connection with a
short busy timeout, and only when another process holds the write lock does
the call move to the pool (whose connections wait the full busy timeout), so
the loop never sleeps on a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable, TypeVar

from bot_core.errors import BotctlError, DatabaseUnavailable
from bot_core.storage import Database

T = TypeVar("T")


class DbExecutor:
    def __init__(self, db: Database, threads: int = 8, inline: bool = False, inline_busy_ms: int = 20):
        self.db = db
        self.inline = inline and db.dialect == "sqlite"
        self._inline_db = replace(db, busy_timeout_ms=inline_busy_ms)
        self._inline_conn: Any = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="botctl-db")
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.db.connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._all_lock:
                if conn in self._all:
                    self._all.remove(conn)
            try:
                conn.close()
            except Exception:
                pass

    def run_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Synchronously: ``fn(cursor, *args)`` inside one transaction on this thread's connection."""
        return self._on_connection(self.db.transaction, fn, *args)

    def run_single(self, fn: Callable[..., T], *args: Any) -> T:
        """Synchronously: ``fn(cursor, *args)``, one statement in autocommit on this thread's connection."""
        return self._on_connection(self.db.autocommit, fn, *args)

    def _on_connection(self, scope: Callable[[Any], Any], fn: Callable[..., T], *args: Any) -> T:
        conn = self._connection()
        try:
            with scope(conn) as cur:
                return fn(cur, *args)
        except BotctlError:
            raise
        except Exception as exc:
            # The connection may be broken (server restarted): start afresh next time.
            self._drop_connection()
            if _is_connection_error(exc):
                raise DatabaseUnavailable(f"database error: {_one_line(exc)}") from None
            raise

    async def single(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` runs in autocommit, without the BEGIN and COMMIT round trips, on a connection
        this executor keeps (no new connection per call, no BEGIN IMMEDIATE): for one statement,
        read or write, which is atomic by itself, or for statements that do not need to be
        atomic together (each commits on its own)."""
        return await self._run(self._single_inline, self.run_single, fn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._run_inline, self.run_transaction, fn, *args)

    async def _run(self, inline: Callable[..., T], on_pool: Callable[..., T], fn: Callable[..., T], *args: Any) -> T:
        if self.inline:
            try:
                return inline(fn, *args)
            except _Busy:
                pass  # another process is writing: wait for it on a pool thread
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, on_pool, fn, *args)

    # Two names, so that bench/stages.py can time each kind of inline work.
    def _run_inline(self, fn: Callable[..., T], *args: Any) -> T:
        return self._on_inline_connection(self.db.transaction, fn, *args)

    def _single_inline(self, fn: Callable[..., T], *args: Any) -> T:
        return self._on_inline_connection(self.db.autocommit, fn, *args)

    def _on_inline_connection(self, scope: Callable[[Any], Any], fn: Callable[..., T], *args: Any) -> T:
        if self._inline_conn is None:
            self._inline_conn = self._inline_db.connect()
        try:
            with scope(self._inline_conn) as cur:
                return fn(cur, *args)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy() from None
            self._inline_conn.close()
            self._inline_conn = None
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:
                    pass
            self._all.clear()


class _Busy(Exception):
    """The inline SQLite connection could not get the write lock quickly."""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _is_connection_error(exc: Exception) -> bool:
    text = str(exc)
    # ODBC SQLSTATE class 08 = connection exception; psqlODBC reports a lost server as 08S01/HY000 text.
    return ("08S01" in text or "08001" in text or "08003" in text or "08006" in text
            or "could not connect" in text or "server closed the connection" in text
            or "connection" in text.lower() and "terminat" in text.lower()
            or "no connection to the server" in text)
