"""Migration files, checksums, statement splitting, the applock seam and plan output."""

from __future__ import annotations

import logging
import re

import pytest

from bot_core.errors import ConfigError
from migrations.locks import APPLOCK_CODES, MigrationLock, MigrationLockError, check_applock_result
from migrations.plan import build_plan
from migrations.scripts import Script, load_migrations, normalise, parse_version, split_statements


@pytest.mark.parametrize("text, expected", [("000", 0), ("0", 0), ("002", 2), ("2", 2),
                                            ("002_improve_deduplication", 2), ("12", 12)])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["two", "-1", "", "2.5"])
def test_parse_version_rejects(text):
    with pytest.raises(ConfigError):
        parse_version(text)


def test_checksum_ignores_bom_and_line_endings():
    lf = normalise("CREATE TABLE A (x INT);\nGO\n")
    crlf = normalise("\ufeffCREATE TABLE A (x INT);\r\nGO\r\n".encode("utf-8"))
    a = Script(1, "a", "up", "a", lf)
    b = Script(1, "a", "up", "a", crlf)
    assert a.checksum == b.checksum
    assert Script(1, "a", "up", "a", lf + " ").checksum != a.checksum


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mssql"])
def test_every_dialect_has_matching_up_and_down_files(dialect):
    migrations = load_migrations(dialect)
    assert [m.version_label for m in migrations] == ["000", "001", "002", "003", "004", "005"]
    assert all(m.down is not None for m in migrations)
    assert [m.slug for m in migrations] == [m.slug for m in load_migrations("sqlite")]


def test_semicolon_splitting_respects_strings_comments_and_dollar_quotes():
    text = ("-- header; not a statement\n"
            "INSERT INTO t VALUES ('a;b', 'it''s; fine');\n"
            "/* block; comment */ CREATE TABLE x (y TEXT);\n"
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
            "  \n-- trailing comment only\n")
    statements = split_statements(text, "postgresql")
    assert [s.text.split()[0] for s in statements] == ["--", "/*", "CREATE"]
    assert "'it''s; fine'" in statements[0].text and "$$ SELECT 1; $$" in statements[2].text
    assert [s.line for s in statements] == [1, 3, 4]


def test_bad_file_names_are_reported(tmp_path):
    (tmp_path / "1_bad.up.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError, match="NNN_slug"):
        load_migrations("sqlite", tmp_path)


class FakeCursor:
    """Answers the applock batch like SQL Server: a rowcount-only set, then SELECT @result."""

    def __init__(self, code):
        self.code = code
        self.sets = [None, [(code,)]]
        self.executed = []

    def execute(self, sql, *params):
        self.executed.append((sql, params))
        self.description = None

    def nextset(self):
        if len(self.sets) > 1:
            self.sets.pop(0)
            self.description = [("result",)] if self.sets[0] is not None else None
            return True
        return False

    def fetchone(self):
        return self.sets[0][0]


class FakeConnection:
    def __init__(self, code):
        self.cur = FakeCursor(code)
        self.commits = 0

    def cursor(self):
        return self.cur

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass


@pytest.mark.parametrize("code", [0, 1])
def test_applock_granted_codes_take_the_lock(code):
    conn = FakeConnection(code)
    lock = MigrationLock("mssql", timeout_s=5)
    lock.acquire(conn)
    assert lock.held and conn.commits == 1
    sql, params = conn.cur.executed[0]
    assert "sp_getapplock" in sql and "@LockOwner = N'Session'" in sql and params == ("botctl_migrations", 5000)
    lock.release(conn)
    assert "sp_releaseapplock" in conn.cur.executed[-1][0]


@pytest.mark.parametrize("code", [-1, -2, -3, -999])
def test_applock_failure_codes_raise_with_their_meaning(code):
    lock = MigrationLock("mssql")
    with pytest.raises(MigrationLockError, match=re.escape(f"returned {code}: {APPLOCK_CODES[code]}")):
        lock.acquire(FakeConnection(code))
    assert not lock.held


def test_applock_without_result_is_an_error():
    with pytest.raises(MigrationLockError, match="no result"):
        check_applock_result(None)


def test_mssql_plan_is_go_separated_and_every_batch_parses():
    sqlglot = pytest.importorskip("sqlglot", reason="sqlglot (the tsql extra) is not installed")
    plan = build_plan("mssql", "up")
    lines = plan.splitlines()
    assert lines.count("GO") >= 4 * 4
    assert "SET XACT_ABORT ON;" in lines
    batches = [b for b in re.split(r"(?m)^GO(?: \d+)?$", plan) if b.strip()]
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    for batch in batches:
        for tree in sqlglot.parse(batch, read="tsql"):
            if tree is not None:
                assert not list(tree.find_all(sqlglot.exp.Command)), batch[:200]
    # The column added by 001 is indexed in a later batch, not the same one.
    add = plan.index("ADD Version INT")
    assert plan.index("\nGO\n", add) < plan.index("CREATE INDEX IX_SesionesChat_Telefono_Version")
    assert plan.count("INSERT INTO dbo.botctl_schema_history") == 6


def test_down_plan_needs_a_target_and_goes_newest_first():
    with pytest.raises(ConfigError, match="needs --to"):
        build_plan("postgresql", "down")
    plan = build_plan("postgresql", "down", to=1)
    assert plan.index("003_inbox_outbox.down.sql") < plan.index("002_improve_deduplication.down.sql")
    assert "001_add_version_column.down.sql" not in plan
