"""migrations.tsql_check: GO-batch splitting and the T-SQL migration linter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrations.tsql_check import (
    Batch,
    GoCountError,
    check_directory,
    check_script,
    check_scripts,
    split_batches,
)

MSSQL = Path(__file__).resolve().parents[2] / "migrations" / "mssql"


# --- split_batches -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("SELECT 1;\nSELECT 2;\n", [Batch("SELECT 1;\nSELECT 2;", 1)], id="no-go"),
    pytest.param("SELECT 1\nGO\nSELECT 2", [Batch("SELECT 1", 1), Batch("SELECT 2", 3)], id="go"),
    pytest.param("SELECT 1\ngo\nSELECT 2", [Batch("SELECT 1", 1), Batch("SELECT 2", 3)], id="lowercase"),
    pytest.param("SELECT 1\n  Go \t \nSELECT 2", [Batch("SELECT 1", 1), Batch("SELECT 2", 3)], id="blanks"),
    pytest.param("SELECT 1\nGO -- next\nSELECT 2", [Batch("SELECT 1", 1), Batch("SELECT 2", 3)], id="go-comment"),
    pytest.param("INSERT t DEFAULT VALUES\nGO 3\nSELECT 2\nGO",
                 [Batch("INSERT t DEFAULT VALUES", 1, 3), Batch("SELECT 2", 3)], id="go-n"),
    pytest.param("SELECT 1\r\nGO\r\n\r\nSELECT 2\r\nGO 2 \r\n",
                 [Batch("SELECT 1", 1), Batch("SELECT 2", 4, 2)], id="crlf"),
    pytest.param("GOTO done\ndone:\nSELECT 1\nGO", [Batch("GOTO done\ndone:\nSELECT 1", 1)], id="goto"),
    pytest.param("SELECT 'a\nGO\nb''\nGO\n'\nGO\nSELECT 2",
                 [Batch("SELECT 'a\nGO\nb''\nGO\n'", 1), Batch("SELECT 2", 7)], id="go-in-string"),
    pytest.param("SELECT N'x\n go \n'\nGO\nSELECT 2", [Batch("SELECT N'x\n go \n'", 1), Batch("SELECT 2", 5)],
                 id="go-in-nstring"),
    pytest.param("/* a /* nested */\nGO\n*/ SELECT 1\nGO\nSELECT 2",
                 [Batch("/* a /* nested */\nGO\n*/ SELECT 1", 1), Batch("SELECT 2", 5)], id="go-in-nested-comment"),
    pytest.param("SELECT 1 AS [x]]\nGO\n]\nGO\nSELECT 2", [Batch("SELECT 1 AS [x]]\nGO\n]", 1), Batch("SELECT 2", 5)],
                 id="go-in-brackets"),
    pytest.param("SELECT 1 -- /* not a comment start\nGO\nSELECT 2", [Batch("SELECT 1 -- /* not a comment start", 1),
                 Batch("SELECT 2", 3)], id="line-comment"),
    pytest.param("GO\n\nGO\n-- only a comment\n/* and\nGO */\nGO\n\n  SELECT 1\nGO\n \n",
                 [Batch("SELECT 1", 9)], id="empty-batches-skipped"),
    pytest.param("\ufeffSELECT 1\nGO", [Batch("SELECT 1", 1)], id="bom"),
    pytest.param("SELECT 1\nGO;\nGO2\n", [Batch("SELECT 1\nGO;\nGO2", 1)], id="not-separators"),
])
def test_split_batches(text: str, expected: list[Batch]) -> None:
    assert split_batches(text) == expected


def test_go_zero_is_refused() -> None:
    with pytest.raises(GoCountError) as error:
        split_batches("SELECT 1\nGO 0\n")
    assert error.value.line == 2
    assert [f.rule for f in check_script("SELECT 1\nGO 0\n", "x.sql")] == ["parse"]


_STATEMENT = st.one_of(
    st.integers(0, 999).map(lambda n: f"SELECT {n}"),
    # Strings holding separators, quotes, comment starts and brackets: none of it may split.
    st.text(alphabet="aGOo '\n-*/[]", max_size=20).map(lambda s: "SELECT N'" + s.replace("'", "''") + "'"),
    st.sampled_from(["SELECT 1 -- GO", "/* a\nGO\n/* b */ */ SELECT 2", "SELECT 1 AS [x\ngo\n]]]", "GOTO x"]),
)
_SEPARATOR = st.sampled_from([("GO", 1), ("go", 1), (" Go\t", 1), ("GO -- next", 1), ("GO 3", 3), ("go 2 -- x", 2)])


@given(st.lists(st.tuples(st.lists(_STATEMENT, min_size=1, max_size=3).map("\n".join), _SEPARATOR),
                min_size=1, max_size=5),
       st.sampled_from(["\n", "\r\n"]))
def test_split_batches_returns_what_go_lines_joined(batches: list[tuple[str, tuple[str, int]]], newline: str) -> None:
    text = "".join(body + "\n" + go + "\n" for body, (go, _) in batches).replace("\n", newline)
    expected, line = [], 1
    for body, (_, repeat) in batches:
        expected.append(Batch(body.replace("\n", newline), line, repeat))
        line += body.count("\n") + 2  # the body's lines and the GO line
    assert split_batches(text) == expected


# --- the real migrations -----------------------------------------------------------------------

def test_real_mssql_migrations_have_no_findings() -> None:
    assert len(list(MSSQL.glob("*.up.sql"))) >= 4  # the check below must have something to check
    assert [str(f) for f in check_directory(MSSQL)] == []


def test_plan_output_has_no_findings() -> None:
    from migrations.plan import build_plan

    up, down = build_plan("mssql", "up"), build_plan("mssql", "down", to=-1)
    assert [str(f) for f in check_scripts({"plan-up.sql": up, "plan-down.sql": down})] == []
    # Alone, the down plan must not take a later migration's DROP INDEX for this one's (COMMIT bounds it).
    assert [str(f) for f in check_script(down, "plan-down.sql")] == []


# --- each rule: a bad script it catches, the corrected script it passes -------------------------

def _found(text: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in check_script(text, "m.sql")]


RULES = [
    pytest.param(
        "named-default",
        "CREATE TABLE dbo.T (\n    a INT NOT NULL CONSTRAINT DF_T_a DEFAULT 0,\n    b INT NOT NULL DEFAULT 1\n);\n"
        "GO\nALTER TABLE dbo.T ADD c INT NOT NULL DEFAULT 2;",
        "CREATE TABLE dbo.T (\n    a INT NOT NULL CONSTRAINT DF_T_a DEFAULT 0,\n"
        "    b INT NOT NULL CONSTRAINT DF_T_b DEFAULT 1\n);\n"
        "GO\nALTER TABLE dbo.T ADD c INT NOT NULL CONSTRAINT DF_T_c DEFAULT 2;",
        [3, 6], id="named-default"),
    pytest.param(
        "merge-holdlock",
        "-- upsert\nMERGE dbo.T AS t\nUSING (SELECT 1 AS a) AS s ON t.a = s.a\n"
        "WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a);",
        "-- upsert\nMERGE dbo.T WITH (HOLDLOCK) AS t\nUSING (SELECT 1 AS a) AS s ON t.a = s.a\n"
        "WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a);\n"
        "MERGE INTO dbo.U WITH (UPDLOCK, SERIALIZABLE) AS u USING dbo.T AS s ON u.a = s.a WHEN MATCHED THEN DELETE;",
        [2], id="merge-holdlock"),
    pytest.param(
        "drop-order",
        "ALTER TABLE dbo.T DROP COLUMN a;\nDROP INDEX IX_T_a ON dbo.T;\nALTER TABLE dbo.T DROP CONSTRAINT DF_T_a;",
        "DROP INDEX IX_T_a ON dbo.T;\nALTER TABLE dbo.T DROP CONSTRAINT DF_T_a;\nALTER TABLE dbo.T DROP COLUMN a;",
        [1, 1], id="drop-order"),
    pytest.param(
        "drop-order",  # an index created earlier in the same script
        "CREATE INDEX IX_T_b ON dbo.T (a) INCLUDE (b);\nGO\nALTER TABLE dbo.T DROP COLUMN b;",
        "CREATE INDEX IX_T_b ON dbo.T (a) INCLUDE (b);\nGO\nDROP INDEX IX_T_b ON dbo.T;\nALTER TABLE dbo.T DROP COLUMN b;",
        [3], id="drop-order-index-in-script"),
    pytest.param(
        "go-before-use",
        "ALTER TABLE dbo.T ADD x INT NULL;\nCREATE INDEX IX_T_x ON dbo.T (x);",
        "ALTER TABLE dbo.T ADD x INT NULL;\nGO\nCREATE INDEX IX_T_x ON dbo.T (x);",
        [2], id="go-before-use"),
    pytest.param(
        "go-before-use",  # a guarded ADD adds too; the use is through an alias, on a later line
        "IF COL_LENGTH('dbo.T', 'x') IS NULL\n    ALTER TABLE dbo.T ADD x INT NULL;\nUPDATE t\nSET t.x = 0\n"
        "FROM dbo.T AS t\nWHERE t.x IS NULL;",
        "IF COL_LENGTH('dbo.T', 'x') IS NULL\n    ALTER TABLE dbo.T ADD x INT NULL;\nGO\nUPDATE t\nSET t.x = 0\n"
        "FROM dbo.T AS t\nWHERE t.x IS NULL;",
        [4], id="go-before-use-guarded"),
    pytest.param(
        "parse",  # sqlglot falls back to a Command
        "SELECT 1;\nGO\nIF OBJECT_ID(N'dbo.T') IS NULL\nBEGIN\n    CREATE TABLE dbo.T (a INT)\nEND",
        "SELECT 1;\nGO\nIF OBJECT_ID(N'dbo.T') IS NULL\nBEGIN\n    CREATE TABLE dbo.T (a INT);\nEND;",
        [5], id="parse-command"),
    pytest.param(
        "parse",  # sqlglot silently takes END for an alias
        "IF 1 = 1\nBEGIN\n    UPDATE dbo.T SET a = 1\nEND",
        "IF 1 = 1\nBEGIN\n    UPDATE dbo.T SET a = 1;\nEND;",
        [4], id="parse-misparse"),
    pytest.param(
        "parse",
        "SELECT 1;\nGO\n\nSELECT *\nFROM dbo.T WHERE;",
        "SELECT 1;\nGO\n\nSELECT *\nFROM dbo.T WHERE a = 1;",
        [5], id="parse-error"),
]


@pytest.mark.parametrize(("rule", "bad", "good", "lines"), RULES)
def test_rule_catches_bad_and_passes_good(rule: str, bad: str, good: str, lines: list[int]) -> None:
    assert _found(bad) == [(rule, line) for line in lines]
    assert _found(good) == []


def test_parse_check_silences_sqlglot_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert _found("PRINT 'hello';") == [("parse", 1)]
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")]
    assert not logging.getLogger("sqlglot").disabled


def test_temporary_tables_keep_unnamed_defaults() -> None:
    assert _found("CREATE TABLE #work (a INT NOT NULL DEFAULT 0);") == []


# --- drop-order with the context of earlier scripts --------------------------------------------

UP = ("ALTER TABLE dbo.T ADD x INT NOT NULL CONSTRAINT DF_T_x DEFAULT 0, y INT NULL;\nGO\n"
      "CREATE INDEX IX_T_x ON dbo.T (x);")


def test_down_script_knows_what_the_up_script_created() -> None:
    bad = check_scripts({"1.up.sql": UP, "1.down.sql": "ALTER TABLE dbo.T DROP COLUMN y, x;"})
    assert [(f.filename, f.line) for f in bad] == [("1.down.sql", 1)] * 2
    assert {m for f in bad for m in ("DF_T_x", "IX_T_x") if m in f.message} == {"DF_T_x", "IX_T_x"}
    good = "DROP INDEX IX_T_x ON dbo.T;\nALTER TABLE dbo.T DROP CONSTRAINT DF_T_x;\nALTER TABLE dbo.T DROP COLUMN y, x;"
    assert check_scripts({"1.up.sql": UP, "1.down.sql": good}) == []
    # A column with no index or constraint may go first, even before a known index on another column.
    other = "ALTER TABLE dbo.T DROP COLUMN y;\nDROP INDEX IX_T_x ON dbo.T;"
    assert check_scripts({"1.up.sql": UP, "1.down.sql": other}) == []
    # A known object dropped too late is reported once, not again as an unknown later drop.
    late = "ALTER TABLE dbo.T DROP COLUMN x;\nDROP INDEX IX_T_x ON dbo.T;\nALTER TABLE dbo.T DROP CONSTRAINT DF_T_x;"
    assert len(check_scripts({"1.up.sql": UP, "1.down.sql": late})) == 2



def test_drop_order_tracks_table_constraints_and_reports_each_object_once() -> None:
    up = ("CREATE TABLE dbo.T (a INT, b INT, c INT, id INT,\n"
          "    CONSTRAINT UQ_T_a_b UNIQUE (a, b),\n    CONSTRAINT FK_T_U FOREIGN KEY (c) REFERENCES dbo.U (id));")
    def found(down: str) -> list[str]:
        return [f.message.split(" while ")[1].split(" still")[0] for f in check_scripts({"up": up, "down": down})]
    assert found("ALTER TABLE dbo.T DROP COLUMN id;") == []  # FK_T_U references U.id, not T.id
    assert found("ALTER TABLE dbo.T DROP COLUMN c;") == ["constraint FK_T_U"]
    assert found("ALTER TABLE dbo.T DROP COLUMN a;\nALTER TABLE dbo.T DROP COLUMN b;") == ["constraint UQ_T_a_b"]
    # DROP TABLE forgets the table's indexes and constraints.
    again = {"up": up, "down": "DROP TABLE dbo.T;", "up2": "CREATE TABLE dbo.T (a INT);",
             "down2": "ALTER TABLE dbo.T DROP COLUMN a;"}
    assert check_scripts(again) == []

def test_check_directory_gives_each_down_the_ups_up_to_its_version(tmp_path: Path) -> None:
    files = {
        "001_add_x.up.sql": "ALTER TABLE dbo.T ADD x INT NOT NULL CONSTRAINT DF_T_x DEFAULT 0;",
        "001_add_x.down.sql": "ALTER TABLE dbo.T DROP CONSTRAINT DF_T_x;\nALTER TABLE dbo.T DROP COLUMN x;",
        # Version 2 indexes x: 001's down must not see it (it runs after 002's down has dropped it).
        "002_index_x.up.sql": "CREATE INDEX IX_T_x ON dbo.T (x);",
        "002_index_x.down.sql": "DROP INDEX IX_T_x ON dbo.T;",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert check_directory(tmp_path) == []
    (tmp_path / "001_add_x.down.sql").write_text("-- forgot the default\nALTER TABLE dbo.T DROP COLUMN x;")
    found = check_directory(tmp_path)
    assert [(Path(f.filename).name, f.rule, f.line) for f in found] == [("001_add_x.down.sql", "drop-order", 2)]
