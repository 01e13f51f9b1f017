"""Runs blocking DB-API work off the event loop, one connection per worker thread.

sqlite3 and pyodbc block; the webhook is async. Each call runs a function on a
cursor inside one transaction (`Database.transaction`) on a thread of a bounded
pool, so the number of connections equals the number of threads.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from bot_core.errors import BotctlError, DatabaseUnavailable
from bot_core.storage import Database

T = TypeVar("T")


class DbExecutor:
    def __init__(self, db: Database, threads: int = 8):
        self.db = db
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
        try:
            conn = self._connection()
        except DatabaseUnavailable:
            raise
        try:
            with self.db.transaction(conn) as cur:
                return fn(cur, *args)
        except BotctlError:
            raise
        except Exception as exc:
            # The connection may be broken (server restarted): start afresh next time.
            self._drop_connection()
            if _is_connection_error(exc):
                raise DatabaseUnavailable(f"database error: {_one_line(exc)}") from None
            raise

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_transaction, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:
                    pass
            self._all.clear()


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _is_connection_error(exc: Exception) -> bool:
    text = str(exc)
    # ODBC SQLSTATE class 08 = connection exception; psqlODBC reports a lost server as 08S01/HY000 text.
    return ("08S01" in text or "08001" in text or "08003" in text or "08006" in text
            or "could not connect" in text or "server closed the connection" in text
            or "connection" in text.lower() and "terminat" in text.lower()
            or "no connection to the server" in text)
