"""Run stored queries locally: duckdb-kql over the JSON-lines telemetry ``botctl serve`` writes.

The file holds one App Insights-shaped row per line (``itemType`` "trace" or
"request", see :class:`bot_core.telemetry.JsonlSink`). They are loaded into
two DuckDB tables named and typed like the classic App Insights tables
(:mod:`kql.schemas`), every classic column present (NULL where the bot writes
nothing), so the same query text runs here and in Azure.

``success`` is stored as the text "True"/"False", as classic App Insights
stores it, although the file holds a JSON boolean.

duckdb and duckdb_kql are imported inside the functions: ``botctl --help``
must not load them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bot_core.errors import BotctlError, ConfigError
from kql.result import QueryResult
from kql.schemas import columns as schema_columns

DUCKDB_TYPES = {"datetime": "TIMESTAMP", "string": "VARCHAR", "int": "INTEGER", "long": "BIGINT",
                "real": "DOUBLE", "bool": "BOOLEAN", "dynamic": "JSON"}

#: What JsonlSink writes, with the DuckDB type each field is read as.
FILE_FIELDS = {
    "itemType": "VARCHAR", "timestamp": "VARCHAR", "message": "VARCHAR", "severityLevel": "INTEGER",
    "itemCount": "INTEGER", "operation_Id": "VARCHAR", "cloud_RoleName": "VARCHAR",
    "customDimensions": "JSON", "id": "VARCHAR", "name": "VARCHAR", "url": "VARCHAR",
    "resultCode": "VARCHAR", "success": "BOOLEAN", "duration": "DOUBLE",
}

#: Fields that need more than a rename on the way in.
_CONVERSIONS = {
    # The file says "…Z"; with the session in UTC this yields the naive UTC
    # TIMESTAMP duckdb-kql expects for KQL datetimes.
    "timestamp": "CAST(CAST(timestamp AS TIMESTAMPTZ) AS TIMESTAMP)",
    "success": "CASE WHEN success THEN 'True' WHEN NOT success THEN 'False' END",
}
_ITEM_TYPES = {"traces": "trace", "requests": "request"}


class LocalQueryError(BotctlError):
    """A stored query that duckdb-kql could not translate or run."""


def connect(path: str | Path) -> Any:
    """A DuckDB connection (UTC, KQL semantics) holding ``traces`` and ``requests`` from *path*."""
    import duckdb_kql

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"telemetry file {path} does not exist: `botctl serve` writes it "
                          "(setting telemetry_file), or pass --file")
    con = duckdb_kql.connect()
    load_telemetry(con, path)
    return con


def load_telemetry(con: Any, path: Path) -> None:
    fields = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in FILE_FIELDS.items()) + "}"
    # ignore_errors: a line cut short by a crash of `botctl serve` must not hide the rest.
    con.execute(f"CREATE OR REPLACE TEMP TABLE telemetry_rows AS SELECT * FROM read_json(?, "
                f"format='newline_delimited', columns={fields}, ignore_errors=true)", [str(path)])
    for table, cols in schema_columns("classic").items():
        select = ", ".join(f"{_source(name, kind)} AS \"{name}\"" for name, kind in cols)
        con.execute(f"CREATE OR REPLACE TABLE \"{table}\" AS SELECT {select} FROM telemetry_rows "
                    f"WHERE itemType = '{_ITEM_TYPES[table]}'")
    con.execute("DROP TABLE telemetry_rows")


def _source(name: str, kind: str) -> str:
    if name in _CONVERSIONS:
        return _CONVERSIONS[name]
    if name in FILE_FIELDS:
        return f"CAST(\"{name}\" AS {DUCKDB_TYPES[kind]})"
    return f"CAST(NULL AS {DUCKDB_TYPES[kind]})"


def run(con: Any, text: str, now: datetime | None = None) -> QueryResult:
    """Run KQL *text* on *con*. *now* pins ``now()``/``ago()`` for reproducible output."""
    import duckdb
    import duckdb_kql

    try:
        relation = duckdb_kql.kql(con, text, query_now=now)
        return QueryResult.from_tuples(relation.columns, relation.fetchall())
    except (duckdb_kql.KqlError, duckdb.Error) as exc:
        raise LocalQueryError(f"duckdb-kql could not run the query: {exc}") from exc
