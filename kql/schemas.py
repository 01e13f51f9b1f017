"""The two Application Insights schemas the stored queries run against.

Classic resources (and queries through the App Insights component id) name
the tables ``traces`` and ``requests``; a Log Analytics workspace names them
``AppTraces`` and ``AppRequests`` with other column names. Stored queries are
written against the classic names; for the workspace, :mod:`kql.render`
prepends ``let traces = AppTraces | project timestamp = TimeGenerated, …``
built from the pairs below.

Each table is a list of ``(classic name, workspace name, kusto type)``; a name
is None where the other schema has no such column. The same declarations feed
the local DuckDB tables (classic names) and the Kusto semantic check in
``tests/kusto`` (both schemas), so the three cannot drift apart.
"""

from __future__ import annotations

Column = tuple[str | None, str | None, str]

_CONTEXT: list[Column] = [
    ("customDimensions", "Properties", "dynamic"),
    ("customMeasurements", "Measurements", "dynamic"),
    ("operation_Name", "OperationName", "string"),
    ("operation_Id", "OperationId", "string"),
    ("operation_ParentId", "ParentId", "string"),
    ("operation_SyntheticSource", "SyntheticSource", "string"),
    ("session_Id", "SessionId", "string"),
    ("user_Id", "UserId", "string"),
    ("user_AuthenticatedId", "UserAuthenticatedId", "string"),
    ("user_AccountId", "UserAccountId", "string"),
    ("application_Version", "AppVersion", "string"),
    ("client_Type", "ClientType", "string"),
    ("client_Model", "ClientModel", "string"),
    ("client_OS", "ClientOS", "string"),
    ("client_IP", "ClientIP", "string"),
    ("client_City", "ClientCity", "string"),
    ("client_StateOrProvince", "ClientStateOrProvince", "string"),
    ("client_CountryOrRegion", "ClientCountryOrRegion", "string"),
    ("client_Browser", "ClientBrowser", "string"),
    ("cloud_RoleName", "AppRoleName", "string"),
    ("cloud_RoleInstance", "AppRoleInstance", "string"),
    ("appId", None, "string"),
    ("appName", None, "string"),
    ("iKey", "IKey", "string"),
    ("sdkVersion", "SDKVersion", "string"),
    ("itemId", None, "string"),
    ("itemCount", "ItemCount", "int"),
    (None, "TenantId", "string"),
    (None, "ResourceGUID", "string"),
    (None, "ReferencedItemId", "string"),
    (None, "ReferencedType", "string"),
    (None, "SourceSystem", "string"),
    (None, "Type", "string"),
    (None, "_ResourceId", "string"),
    (None, "_BilledSize", "real"),
    (None, "_IsBillable", "string"),
]

TABLES: dict[str, tuple[str, list[Column]]] = {
    "traces": ("AppTraces", [
        ("timestamp", "TimeGenerated", "datetime"),
        ("message", "Message", "string"),
        ("severityLevel", "SeverityLevel", "int"),
        ("itemType", None, "string"),
        *_CONTEXT,
    ]),
    "requests": ("AppRequests", [
        ("timestamp", "TimeGenerated", "datetime"),
        ("id", "Id", "string"),
        ("source", "Source", "string"),
        ("name", "Name", "string"),
        ("url", "Url", "string"),
        # Classic `success` holds the text "True"/"False"; AppRequests.Success is a
        # bool. Queries read it through tobool(), which accepts both.
        ("success", None, "string"),
        (None, "Success", "bool"),
        ("resultCode", "ResultCode", "string"),
        ("duration", "DurationMs", "real"),
        ("performanceBucket", "PerformanceBucket", "string"),
        ("itemType", None, "string"),
        *_CONTEXT,
    ]),
}

#: The classic columns a workspace query sees through the prelude, with their
#: workspace sources; `success` is mapped by hand since its type differs.
_WORKSPACE_EXTRA = {"requests": [("success", "Success")]}


def columns(schema: str) -> dict[str, list[tuple[str, str]]]:
    """``{table: [(column, type), …]}`` of one schema, as Kusto declares it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for classic_table, (workspace_table, cols) in TABLES.items():
        if schema == "classic":
            out[classic_table] = [(c, t) for c, _, t in cols if c]
        else:
            out[workspace_table] = [(w, t) for _, w, t in cols if w]
    return out


def workspace_mappings() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """``{classic table: (workspace table, [(classic column, workspace column), …])}``."""
    return {
        classic_table: (workspace_table,
                        [(c, w) for c, w, _ in cols if c and w] + _WORKSPACE_EXTRA.get(classic_table, []))
        for classic_table, (workspace_table, cols) in TABLES.items()
    }


def table_schema_text(cols: list[tuple[str, str]]) -> str:
    """Kusto's row-schema text, ``(a:string, b:int)``."""
    return "(" + ", ".join(f"{name}:{kind}" for name, kind in cols) + ")"
