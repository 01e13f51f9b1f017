"""What running one stored query gives back, from either source, and its threshold verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from kql.queries import StoredQuery


@dataclass
class QueryResult:
    """Rows as dicts in column order. ``status`` is "ok", "partial" or "failed"."""

    columns: list[str]
    rows: list[dict[str, Any]]
    status: str = "ok"
    #: For a partial or failed result: {"code", "message", "details"} as the service said it.
    error: dict[str, Any] | None = None

    @classmethod
    def from_tuples(cls, columns: Sequence[str], tuples: Sequence[Sequence[Any]], **kwargs: Any) -> "QueryResult":
        names = list(columns)
        return cls(names, [dict(zip(names, map(_normalise, row))) for row in tuples], **kwargs)


def _normalise(value: Any) -> Any:
    # DuckDB hands back naive datetimes that are UTC; Azure, aware ones. One form for both.
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value


@dataclass
class ThresholdOutcome:
    column: str
    config_key: str
    limit: float
    breached: bool
    #: The largest value of the column, and the row's timestamp when it has one.
    worst: float | None = None
    at: datetime | None = None
    breaches: int = 0
    notes: list[str] = field(default_factory=list)


def evaluate(query: StoredQuery, result: QueryResult, limit: float) -> ThresholdOutcome:
    """Breached when any row's threshold column is above *limit* (a null value never breaches)."""
    assert query.threshold is not None
    column = query.threshold.column
    outcome = ThresholdOutcome(column, query.threshold.config_key, float(limit), breached=False)
    if result.rows and column not in result.columns:
        outcome.notes.append(f"column {column} missing from the result")
        return outcome
    for row in result.rows:
        value = row.get(column)
        if value is None:
            continue
        value = float(value)
        if value > outcome.limit:
            outcome.breaches += 1
        if outcome.worst is None or value > outcome.worst:
            outcome.worst, outcome.at = value, row.get("timestamp")
    outcome.breached = outcome.breaches > 0
    return outcome
