"""Locks that keep two migration runners from applying the same migration.

* mssql: ``sp_getapplock`` owned by the session, its return code checked;
* postgresql: a session-level advisory lock, polled with ``pg_try_advisory_lock``
  so a waiting runner gives up with a clear message after its timeout;
* sqlite: an exclusive ``flock`` on ``<database>.migrate-lock`` for the whole run
  (so a second runner waits, then finds nothing to do; the file is removed on release), and every migration also
  runs in ``BEGIN IMMEDIATE``, re-reading the history inside it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bot_core.errors import BotctlError

LOCK_RESOURCE = "botctl_migrations"
# pg advisory locks take a bigint; this one is fixed so every runner agrees on it.
PG_LOCK_KEY = 0x626F74636C6D6967  # "botclmig"


class MigrationLockError(BotctlError):
    """The migration lock could not be taken."""


# sp_getapplock's documented return codes.
APPLOCK_CODES = {
    0: "granted",
    1: "granted after waiting for other incompatible locks to be released",
    -1: "timed out waiting for the lock",
    -2: "the lock request was cancelled",
    -3: "the lock request was chosen as a deadlock victim",
    -999: "parameter validation or other call error",
}

APPLOCK_SQL = """SET NOCOUNT ON;
DECLARE @result INT;
EXEC @result = sp_getapplock @Resource = ?, @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = ?;
SELECT @result AS result;"""

APPRELEASE_SQL = "EXEC sp_releaseapplock @Resource = ?, @LockOwner = N'Session';"


def first_scalar(cursor: Any) -> Any:
    """The first value of the first result set that has columns (skips rowcount-only sets)."""
    while True:
        if cursor.description is not None:
            row = cursor.fetchone()
            return row[0] if row else None
        if not cursor.nextset():
            return None


def check_applock_result(code: Any) -> int:
    if code is None:
        raise MigrationLockError("sp_getapplock returned no result")
    code = int(code)
    if code >= 0:
        return code
    reason = APPLOCK_CODES.get(code, "unknown return code")
    raise MigrationLockError(f"could not take the migration lock (sp_getapplock returned {code}: {reason})")


class MigrationLock:
    def __init__(self, dialect: str, timeout_s: float = 60.0, sqlite_path: str | None = None):
        self.dialect = dialect
        self.timeout_s = timeout_s
        self.sqlite_path = sqlite_path
        self.held = False
        self._lock_file: Any = None
        self._lock_path: str | None = None

    def acquire(self, conn: Any) -> None:
        if self.dialect == "mssql":
            cur = conn.cursor()
            cur.execute(APPLOCK_SQL, LOCK_RESOURCE, int(self.timeout_s * 1000))
            check_applock_result(first_scalar(cur))
            conn.commit()
        elif self.dialect == "postgresql":
            self._acquire_pg(conn)
        elif self.sqlite_path and self.sqlite_path != ":memory:":
            self._acquire_file(self.sqlite_path + ".migrate-lock")
        self.held = True

    def _acquire_file(self, path: str) -> None:
        """flock ``path``; the holder removes it on release, so nothing is left behind.

        A runner that opened the file just before the holder removed it would lock an
        orphaned inode: after taking the lock, it checks the path is still that file.
        """
        import fcntl

        deadline = time.monotonic() + self.timeout_s
        while True:
            handle = open(path, "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                if time.monotonic() >= deadline:
                    raise MigrationLockError(
                        f"another botctl migrate holds the migration lock; gave up after {self.timeout_s:.0f}s")
                time.sleep(0.05)
                continue
            if _same_file(handle, path):
                self._lock_file, self._lock_path = handle, path
                return
            handle.close()

    def _acquire_pg(self, conn: Any) -> None:
        deadline = time.monotonic() + self.timeout_s
        cur = conn.cursor()
        while True:
            cur.execute("SELECT CASE WHEN pg_try_advisory_lock(?) THEN 1 ELSE 0 END", PG_LOCK_KEY)
            got = cur.fetchone()[0]
            conn.commit()
            if int(got) == 1:
                return
            if time.monotonic() >= deadline:
                raise MigrationLockError(
                    f"another botctl migrate holds the migration lock; gave up after {self.timeout_s:.0f}s")
            time.sleep(0.1)

    def release(self, conn: Any) -> None:
        if not self.held:
            return
        self.held = False
        if self._lock_file is not None:
            try:
                os.unlink(self._lock_path)  # removed while still held: see _acquire_file
            except OSError:
                pass
            self._lock_file.close()  # closing the file releases the flock
            self._lock_file = None
        try:
            conn.rollback()
            cur = conn.cursor()
            if self.dialect == "mssql":
                cur.execute(APPRELEASE_SQL, LOCK_RESOURCE)
            elif self.dialect == "postgresql":
                cur.execute("SELECT pg_advisory_unlock(?)", PG_LOCK_KEY)
                cur.fetchall()
            conn.commit()
        except Exception:
            # Session locks die with the connection, which the caller closes next.
            pass


def _same_file(handle: Any, path: str) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
