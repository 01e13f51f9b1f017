"""Migration files: discovery, normalisation, checksums and statement splitting.

Files live in ``migrations/<dialect>/NNN_slug.up.sql`` and ``.down.sql``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot_core.errors import ConfigError

FILE_RE = re.compile(r"^(?P<version>\d{3,})_(?P<slug>[a-z0-9_]+)\.(?P<direction>up|down)\.sql$")
TRANSACTION_OFF_RE = re.compile(r"^\s*--\s*botctl:\s*transaction\s*=\s*off\s*$", re.I | re.M)


@dataclass(frozen=True)
class Script:
    """One direction of one migration, normalised."""

    version: int
    slug: str
    direction: str
    path: str
    text: str

    @property
    def version_label(self) -> str:
        return f"{self.version:03d}"

    @property
    def name(self) -> str:
        return f"{self.version_label}_{self.slug}.{self.direction}.sql"

    @property
    def description(self) -> str:
        return self.slug.replace("_", " ")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def transactional(self) -> bool:
        return not TRANSACTION_OFF_RE.search(self.text)


@dataclass(frozen=True)
class Migration:
    version: int
    slug: str
    up: Script
    down: Script | None

    @property
    def version_label(self) -> str:
        return f"{self.version:03d}"

    @property
    def description(self) -> str:
        return self.up.description


def normalise(raw: bytes | str) -> str:
    """Text as checksummed and executed: BOM stripped, CRLF/CR -> LF."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_version(value: str | int) -> int:
    """'000', '0', '002', '2' and '002_improve_deduplication' all name a version."""
    text = str(value).strip()
    match = re.match(r"^(\d+)(?:_[A-Za-z0-9_]*)?(?:\.(?:up|down)\.sql)?$", text)
    if not match:
        raise ConfigError(f"invalid migration version {text!r}: expected a number such as 2 or 002")
    return int(match.group(1))


def default_directory(dialect: str) -> Path:
    return Path(str(resources.files("migrations"))) / dialect


def load_migrations(dialect: str, directory: str | Path | None = None) -> list[Migration]:
    """All migrations of a dialect, ordered by version; bad file sets are errors."""
    folder = Path(directory) if directory else default_directory(dialect)
    if not folder.is_dir():
        raise ConfigError(f"no migrations folder for dialect {dialect!r} at {folder}")
    ups: dict[int, Script] = {}
    downs: dict[int, Script] = {}
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(".sql"):
            continue
        match = FILE_RE.match(path.name)
        if not match:
            raise ConfigError(f"migration file name {path.name!r} is not NNN_slug.up|down.sql")
        script = Script(int(match["version"]), match["slug"], match["direction"], str(path),
                        normalise(path.read_bytes()))
        target = ups if script.direction == "up" else downs
        if script.version in target:
            raise ConfigError(f"two {script.direction} files for version {script.version_label} in {folder}")
        target[script.version] = script
    orphans = sorted(set(downs) - set(ups))
    if orphans:
        raise ConfigError(f"down file without up file for version {orphans[0]:03d} in {folder}")
    return [Migration(v, ups[v].slug, ups[v], downs.get(v)) for v in sorted(ups)]


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the statement's first non-blank character
    repeat: int = 1


def split_statements(text: str, dialect: str) -> list[Statement]:
    """Executable units of a script: T-SQL GO batches, else ';'-separated statements."""
    if dialect == "mssql":
        from migrations.tsql_check import split_batches

        return [Statement(b.text, b.line, b.repeat) for b in split_batches(text)]
    return _split_semicolons(text)


def _split_semicolons(text: str) -> list[Statement]:
    """Split on ';' outside quotes, comments and PostgreSQL dollar quotes."""
    out: list[Statement] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in ("'", '"'):
            i = _skip_quoted(text, i, ch)
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        if ch == "$":
            match = re.match(r"\$[A-Za-z_0-9]*\$", text[i:])
            if match:
                tag = match.group(0)
                end = text.find(tag, i + len(tag))
                i = n if end == -1 else end + len(tag)
                continue
        if ch == ";":
            _append(out, text, start, i)
            start = i + 1
        i += 1
    _append(out, text, start, n)
    return out


def _skip_quoted(text: str, i: int, quote: str) -> int:
    j = i + 1
    while j < len(text):
        if text[j] == quote:
            if j + 1 < len(text) and text[j + 1] == quote:  # doubled quote escapes itself
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _append(out: list[Statement], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    if not _has_code(chunk):
        return
    offset = len(chunk) - len(chunk.lstrip())
    line = text.count("\n", 0, start + offset) + 1
    out.append(Statement(chunk.strip(), line))


def _has_code(chunk: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", chunk, flags=re.S)
    return bool(without_comments.strip())
