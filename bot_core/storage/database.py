"""One small interface over DB-API for the three dialects.

Every dialect takes ``?`` placeholders (sqlite3 and pyodbc are both qmark), so
SQL differs between dialects only where the database really differs. A
:class:`Database` connects and runs transactions; it holds no connection itself.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from bot_core.errors import ConfigError, DatabaseUnavailable
from bot_core.files import create_private
from bot_core.storage.url import DatabaseURL, parse_db_url

# SQL_COPT_SS_ACCESS_TOKEN: pre-connect attribute carrying an Entra ID access token.
SQL_COPT_SS_ACCESS_TOKEN = 1256
AZURE_SQL_SCOPE = "https://database.windows.net/.default"
MSSQL_DRIVER_PREFERENCE = ("ODBC Driver 18 for SQL Server", "ODBC Driver 17 for SQL Server", "FreeTDS")
POSTGRES_DRIVER_PREFERENCE = ("PostgreSQL Unicode", "PostgreSQL ANSI")


class Connection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Database:
    """Connects to one database. ``paramstyle`` is ``qmark`` for every dialect."""

    url: DatabaseURL
    busy_timeout_ms: int = 5000
    connect_timeout_s: int = 5
    credential_factory: Callable[[str], Any] | None = None  # mssql token auth seam
    must_exist: bool = False  # sqlite: refuse to create the file (read-only commands, a running server's)

    paramstyle = "qmark"

    @property
    def dialect(self) -> str:
        return self.url.dialect

    def connect(self) -> Connection:
        if self.dialect == "sqlite":
            return self._connect_sqlite()
        return self._connect_odbc()

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Any]:
        """A write transaction on ``conn``: commit on success, roll back on any error.

        SQLite takes the write lock up front (BEGIN IMMEDIATE) so two writers
        queue on the busy timeout instead of failing at their first write.
        """
        cur = conn.cursor()
        if self.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        elif self.dialect == "mssql":
            cur.execute("SET XACT_ABORT ON")
        try:
            yield cur
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # the connection may be dead; the caller sees the first error
                pass
            raise
        else:
            conn.commit()
        finally:
            try:
                cur.close()
            except Exception:
                pass

    @contextmanager
    def autocommit(self, conn: Connection) -> Iterator[Any]:
        """A cursor for one statement outside any transaction, where it is atomic by itself:
        no BEGIN/COMMIT round trips (an idle bot's periodic look for work is one statement,
        not three; a delivery of one message is recorded by one)."""
        odbc = self.dialect != "sqlite"  # our SQLite connections are in autocommit mode already
        if odbc:
            conn.autocommit = True
        cur = conn.cursor()
        try:
            yield cur
        finally:
            try:
                cur.close()
            finally:
                if odbc:
                    conn.autocommit = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            try:
                conn.close()
            except Exception:
                pass

    # --- dialects -------------------------------------------------------------

    def _connect_sqlite(self) -> Connection:
        path = self.url.database
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.exists():
                raise DatabaseUnavailable(f"cannot open {self.url}: folder {parent} does not exist")
            if self.must_exist and not Path(path).is_file():
                raise DatabaseUnavailable(f"database {path} does not exist (`botctl migrate up --db {self.url}` "
                                          "creates it)")
        try:
            if path != ":memory:" and not path.startswith("file:"):
                create_private(path)  # SQLite gives its -wal and -shm files the same mode
            conn = sqlite3.connect(path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            _set_wal(conn, self.busy_timeout_ms)
            conn.execute("PRAGMA synchronous = NORMAL")
            # The bot checkpoints in the background (Bot._checkpoint_loop); the automatic
            # checkpoint stays as a safety net for other writers, at 16k pages instead of 1k.
            conn.execute("PRAGMA wal_autocheckpoint = 16000")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {self.url}: {exc}") from None
        return _SqliteConnection(conn)

    def _connect_odbc(self) -> Connection:
        from bot_core.optional import require

        pyodbc = require("pyodbc", self.dialect)
        conn_str, attrs = odbc_connect_args(self.url, pyodbc.drivers(), self.credential_factory,
                                            self.connect_timeout_s)
        try:
            conn = pyodbc.connect(conn_str, autocommit=False, attrs_before=attrs or None,
                                  timeout=self.connect_timeout_s)
        except pyodbc.Error as exc:
            raise DatabaseUnavailable(f"cannot connect to {self.url}: {odbc_error_text(exc)}") from None
        return conn


def _set_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switch to WAL. The switch needs a moment alone with the file and does not
    wait on the busy handler, so two processes opening a new file retry it."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


class _SqliteConnection:
    """sqlite3 in autocommit mode with explicit BEGIN; ``commit``/``rollback`` issue SQL.

    Python's sqlite3 commit() is a no-op without its own implicit transaction,
    so we send COMMIT/ROLLBACK ourselves. A lock keeps a shared connection's
    transactions from interleaving across threads.
    """

    def __init__(self, raw: sqlite3.Connection):
        self.raw = raw
        self.lock = threading.RLock()

    def cursor(self) -> sqlite3.Cursor:
        return self.raw.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()


def odbc_error_text(exc: Exception) -> str:
    """The driver's message without the ODBC boilerplate, on one line."""
    args = getattr(exc, "args", ())
    text = str(args[1] if len(args) > 1 else exc)
    for noise in ("[unixODBC]", "[Microsoft]", "[ODBC Driver 18 for SQL Server]", "[SQL Server]"):
        text = text.replace(noise, "")
    return " ".join(text.split()).strip()


def choose_driver(installed: Sequence[str], preferred: Sequence[str], wanted: str | None) -> str:
    if wanted:
        if wanted not in installed:
            raise ConfigError(f"ODBC driver {wanted!r} is not installed (installed: {', '.join(installed) or 'none'})")
        return wanted
    for name in preferred:
        if name in installed:
            return name
    package = "odbc-postgresql" if preferred == POSTGRES_DRIVER_PREFERENCE else "tdsodbc (FreeTDS) or msodbcsql18"
    raise ConfigError(f"no ODBC driver found for this database ({', '.join(preferred)}): apt-get install {package}")


def azure_token_struct(token: str) -> bytes:
    """The SQL_COPT_SS_ACCESS_TOKEN value: little-endian length + UTF-16-LE token."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)


def _default_credential(auth: str) -> Any:
    from bot_core.optional import require

    identity = require("azure.identity", "mssql token auth")
    return identity.ManagedIdentityCredential() if auth == "msi" else identity.DefaultAzureCredential()


def _odbc_value(value: str) -> str:
    # ODBC connection-string values with ; or braces must be braced, } doubled.
    if any(ch in value for ch in ";{}=") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


def odbc_connect_args(url: DatabaseURL, installed_drivers: Sequence[str],
                      credential_factory: Callable[[str], Any] | None = None,
                      timeout_s: int = 5) -> tuple[str, dict[int, bytes]]:
    """Connection string and pre-connect attributes for pyodbc (no I/O but the token)."""
    if url.dialect == "postgresql":
        driver = choose_driver(installed_drivers, POSTGRES_DRIVER_PREFERENCE, url.param("driver"))
        parts = {
            "DRIVER": "{" + driver + "}",
            "SERVER": url.host or "localhost",
            "PORT": str(url.port or 5432),
            "DATABASE": _odbc_value(url.database),
            "UID": _odbc_value(url.user or "postgres"),
            # psqlODBC's documented options (its docs/config.html and config-opt.html, 13.x):
            # Protocol=7.4-1 is "Level of rollback on errors: Transaction(1)", the whole
            # transaction rolls back on an error, as Database.transaction does anyway; the
            # default (2) wraps each statement in SAVEPOINT/RELEASE _per_query_svp_.
            # UseServerSidePrepare=0: the driver binds parameters itself (escaped by the
            # driver, never by us) instead of a server-side prepared statement per execute,
            # which with level 1 still cost a SAVEPOINT/RELEASE pair around each row of an
            # executemany (counted with pg_stat_statements: bench/stages.py).
            "Protocol": "7.4-1",
            "UseServerSidePrepare": "0",
            "BoolsAsChar": "0",  # booleans as booleans
            "LoginTimeout": str(timeout_s),
        }
        if url.password:
            parts["PWD"] = _odbc_value(url.password)
        return ";".join(f"{k}={v}" for k, v in parts.items()) + ";", {}
    if url.dialect != "mssql":
        raise ConfigError(f"{url.dialect} is not an ODBC dialect")
    driver = choose_driver(installed_drivers, MSSQL_DRIVER_PREFERENCE, url.param("driver"))
    server = url.host or ""
    if url.port:
        server += f",{url.port}"
    parts = {
        "DRIVER": "{" + driver + "}",
        "SERVER": _odbc_value(server if driver == "FreeTDS" else f"tcp:{server}"),
        "DATABASE": _odbc_value(url.database),
        "Encrypt": "yes",
        "TrustServerCertificate": url.param("trust_server_certificate", "no"),
        "Connection Timeout": str(timeout_s),
    }
    if driver == "FreeTDS":
        parts.pop("Connection Timeout")
        parts["TDS_Version"] = "7.4"
        parts["PORT"] = str(url.port or 1433)
        parts["SERVER"] = _odbc_value(url.host or "")
    auth = url.param("auth", "token")
    attrs: dict[int, bytes] = {}
    if auth == "password":
        if not url.user or not url.password:
            raise ConfigError("mssql auth=password needs user in the URL and BOTCTL_DB_PASSWORD")
        parts["UID"] = _odbc_value(url.user)
        parts["PWD"] = _odbc_value(url.password)
    else:
        # Entra ID: the token goes in as a pre-connect attribute; no UID/PWD in the string.
        factory = credential_factory or _default_credential
        credential = factory(auth)
        token = credential.get_token(AZURE_SQL_SCOPE).token
        attrs[SQL_COPT_SS_ACCESS_TOKEN] = azure_token_struct(token)
    return ";".join(f"{k}={v}" for k, v in parts.items()) + ";", attrs


def open_database(url: str | DatabaseURL, password: str | None = None, **options: Any) -> Database:
    parsed = parse_db_url(url) if isinstance(url, str) else url
    if password and not parsed.password:
        parsed = parsed.with_password(password)
    return Database(parsed, **options)


def database_from_config(config: Any, **options: Any) -> Database:
    """The database a resolved :class:`bot_core.config.Config` names.

    A password typed into a ``--db`` flag would end up in shell history, so a
    URL from a flag must not carry one: it comes from BOTCTL_DB_PASSWORD or a file.
    """
    url = parse_db_url(config.get("db"))
    if url.password and config.source("db") == "flag":
        raise ConfigError("do not put a password in --db: set BOTCTL_DB_PASSWORD or db_password_file")
    return open_database(url, password=config.get("db_password"), **options)
