"""Invariants read straight from the database after a run."""

from __future__ import annotations

import time

from bot_core.storage import open_database


def scalar(db_url: str, sql: str, params: tuple = ()) -> int:
    db = open_database(db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        value = cur.fetchone()[0]
        conn.rollback()
        return int(value or 0)


def wait_all_processed(db_url: str, expected: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = scalar(db_url, "SELECT COUNT(*) FROM MensajesProcesados WHERE Estado = 'PROCESADO'")
        if done >= expected:
            return
        if time.monotonic() > deadline:
            states = scalar(db_url, "SELECT COUNT(*) FROM MensajesProcesados")
            raise AssertionError(f"only {done} of {expected} processed ({states} inbox rows) after {timeout}s")
        time.sleep(0.2)
