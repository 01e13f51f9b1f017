"""UTC timestamps as each dialect stores them.

SQLite keeps 'YYYY-MM-DD HH:MM:SS.fff' text (sorts as time does); PostgreSQL and
SQL Server take naive UTC datetimes (TIMESTAMP / DATETIME2, never TIMESTAMP WITH TIME ZONE).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db(dialect: str, value: datetime | None) -> Any:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    if dialect == "sqlite":
        return value.isoformat(sep=" ", timespec="milliseconds")
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


def from_db(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def iso_utc(value: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, as every botctl output shows a time: seconds, or the
    milliseconds/microseconds it has (a naive datetime is UTC, as the databases store them)."""
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    micros = value.microsecond
    spec = "seconds" if micros == 0 else "milliseconds" if micros % 1000 == 0 else "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
