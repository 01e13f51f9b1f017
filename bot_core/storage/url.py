"""Database URLs: parsing, validation and redaction.

    sqlite:///relative/file.db     sqlite:////absolute/file.db     sqlite:///:memory:
    postgresql://user@host:port/db                 (password: BOTCTL_DB_PASSWORD or db_password_file)
    mssql://server[:port]/db?driver=…&auth=token|msi|password[&user=…]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from bot_core.errors import ConfigError

DIALECTS = ("sqlite", "postgresql", "mssql")
_SCHEME_ALIASES = {"postgres": "postgresql", "sqlserver": "mssql", "azuresql": "mssql"}
_SECRET_PARAMS = {"password", "pwd", "token", "access_token", "key"}
MSSQL_AUTH = ("token", "msi", "password")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed BOTCTL_DB URL (the password kept out of its repr)."""

    dialect: str
    database: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def with_password(self, password: str | None) -> "DatabaseURL":
        return replace(self, password=password) if password else self

    def redacted(self) -> str:
        """The URL as it may be printed: no password, no secret parameter."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.database}"
        auth = ""
        if self.user:
            auth = self.user + (":***" if self.password else "") + "@"
        port = f":{self.port}" if self.port else ""
        query = "&".join(f"{k}={'***' if k.lower() in _SECRET_PARAMS else v}" for k, v in self.params)
        return f"{self.dialect}://{auth}{self.host or ''}{port}/{self.database}" + (f"?{query}" if query else "")

    def __str__(self) -> str:  # never leak a password through formatting
        return self.redacted()


def parse_db_url(url: str) -> DatabaseURL:
    if not url or "://" not in url:
        raise ConfigError(f"invalid database URL {redact_text(url)!r}: expected scheme://…")
    scheme = url.split("://", 1)[0].lower()
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if scheme not in DIALECTS:
        raise ConfigError(
            f"unknown database URL scheme {scheme!r}: use sqlite:///file.db, "
            "postgresql://user@host:port/db or mssql://server/db")
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        if not path.startswith("/") or path == "/":
            raise ConfigError("sqlite URL must look like sqlite:///relative.db or sqlite:////abs/path.db")
        return DatabaseURL("sqlite", path[1:])
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"invalid port in database URL {redact_text(url)!r}") from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise ConfigError(f"{scheme} URL needs a host and a database: {redact_text(url)!r}")
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    parsed = DatabaseURL(scheme, database, parts.hostname, port,
                         unquote(parts.username) if parts.username else None,
                         unquote(parts.password) if parts.password else None, params)
    if scheme == "mssql":
        auth = parsed.param("auth", "token")
        if auth not in MSSQL_AUTH:
            raise ConfigError(f"mssql auth must be one of {', '.join(MSSQL_AUTH)}, not {auth!r}")
    return parsed


def redact_text(text: str | None) -> str:
    """Redact a URL-ish string that may not even parse (for error messages)."""
    if not text:
        return ""
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, _, tail = rest.rpartition("@")
        if ":" in creds:
            text = f"{scheme}://{creds.split(':', 1)[0]}:***@{tail}"
    for key in _SECRET_PARAMS:
        lowered = text.lower()
        idx = lowered.find(key + "=")
        while idx != -1:
            end = text.find("&", idx)
            end = len(text) if end == -1 else end
            text = text[: idx + len(key) + 1] + "***" + text[end:]
            lowered = text.lower()
            idx = lowered.find(key + "=", idx + len(key) + 4)
    return text
