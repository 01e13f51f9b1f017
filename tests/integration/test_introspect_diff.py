"""The schema diff finds every kind of difference, on real SQLite and PostgreSQL.

The rehearsal and the round-trip tests only ever see "identical"; here each kind of
difference (table, column, type, nullability, default, index, constraint) is planted by
recreating a small table with one thing changed, and the diff must name it.
"""

from __future__ import annotations

import pytest

from migrations.introspect import diff, introspect
from migrations.runner import MigrationRunner

BASE = {
    "Id": "INTEGER NOT NULL CONSTRAINT PK_T PRIMARY KEY",
    "A": "INTEGER NOT NULL DEFAULT 0",
    "B": "VARCHAR(20) NULL",
    "C": "INTEGER NULL",
    "P": "INTEGER NULL CONSTRAINT FK_T_P REFERENCES P (PId)",
}
CONSTRAINTS = {"CK_T_A": "CHECK (A >= 0)", "UQ_T_B": "UNIQUE (B)"}
INDEXES = {"IX_T_C": "(C)"}


def create(db, columns=None, constraints=None, indexes=None, extra=()):
    columns, constraints, indexes = columns or BASE, constraints or CONSTRAINTS, indexes or INDEXES
    body = [f"{name} {spec}" for name, spec in columns.items()]
    body += [f"CONSTRAINT {name} {spec}" for name, spec in constraints.items() if spec]
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            for name in ("T", "T2"):
                cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE T ({', '.join(body)})")
            for name, spec in indexes.items():
                if spec:
                    cur.execute(f"CREATE {'UNIQUE ' if spec.startswith('u') else ''}INDEX {name} "
                                f"ON T {spec.lstrip('u')}")
            for sql in extra:
                cur.execute(sql)


@pytest.fixture
def base(db):
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("CREATE TABLE P (PId INTEGER NOT NULL PRIMARY KEY)")
    create(db)
    return db, introspect(db)


def changed(base, **kwargs) -> list[str]:
    """The diff after recreating T with one change, lower-cased (PostgreSQL folds unquoted names)."""
    db, before = base
    create(db, **kwargs)
    return lowered(diff(before, introspect(db)))


def lowered(lines: list[str]) -> list[str]:
    return [line.lower() for line in lines]


def test_the_same_schema_recreated_has_no_difference(base):
    assert changed(base) == []


def test_a_table_added_and_a_table_missing(base):
    assert changed(base, extra=["CREATE TABLE T2 (X INTEGER NULL)"]) == ["table t2 added"]
    db, before = base
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("DROP TABLE T2")
            cur.execute("DROP TABLE T")
    assert lowered(diff(before, introspect(db))) == ["table t missing after"]


def names(lines: list[str]) -> set[str]:
    return {line.split(":")[0] for line in lines}


def test_a_column_added_and_a_column_missing(base):
    assert "column t.d added" in changed(base, columns={**BASE, "D": "INTEGER NULL"})
    without_c = {k: v for k, v in BASE.items() if k != "C"}
    lines = changed(base, columns=without_c, indexes={"IX_T_C": ""})
    assert "column t.c missing after" in lines and "index t.ix_t_c missing after" in lines


def test_a_column_type_change(base):
    lines = changed(base, columns={**BASE, "C": "BIGINT NULL"})
    assert lines and all(line.startswith("column t.c: ") for line in lines), lines
    assert any(" type " in line for line in lines), lines


def test_a_column_length_change(base):
    lines = changed(base, columns={**BASE, "B": "VARCHAR(40) NULL"})
    assert names(lines) == {"column t.b"} and any("40" in line for line in lines), lines


def test_a_nullability_change(base):
    assert changed(base, columns={**BASE, "C": "INTEGER NOT NULL"}) == ["column t.c: nullable true -> false"]


def test_a_default_change(base):
    lines = changed(base, columns={**BASE, "A": "INTEGER NOT NULL DEFAULT 1"})
    assert len(lines) == 1 and lines[0].startswith("column t.a: default"), lines


def test_a_default_dropped(base):
    lines = changed(base, columns={**BASE, "A": "INTEGER NOT NULL"})
    assert lines == ["column t.a: default '0' -> none"], lines


def test_an_index_missing_added_and_changed(base):
    assert changed(base, indexes={"IX_T_C": ""}) == ["index t.ix_t_c missing after"]
    assert changed(base, indexes={**INDEXES, "IX_T_A": "(A)"}) == ["index t.ix_t_a added"]
    lines = changed(base, indexes={"IX_T_C": "(C, A)"})
    assert names(lines) == {"index t.ix_t_c"}, lines
    lines = changed(base, indexes={"IX_T_C": "u(C)"})
    assert names(lines) == {"index t.ix_t_c"}, lines


def test_a_check_constraint_missing_and_changed(base):
    assert changed(base, constraints={**CONSTRAINTS, "CK_T_A": ""}) == ["constraint t.ck_t_a missing after"]
    lines = changed(base, constraints={**CONSTRAINTS, "CK_T_A": "CHECK (A >= 1)"})
    assert names(lines) == {"constraint t.ck_t_a"} and "1" in lines[0], lines


def test_a_unique_constraint_changed_and_added(base):
    lines = changed(base, constraints={**CONSTRAINTS, "UQ_T_B": "UNIQUE (B, C)"})
    assert "constraint t.uq_t_b" in names(lines), lines
    lines = changed(base, constraints={**CONSTRAINTS, "UQ_T_C": "UNIQUE (C)"})
    assert "constraint t.uq_t_c added" in lines, lines


def test_a_foreign_key_missing(base):
    lines = changed(base, columns={**BASE, "P": "INTEGER NULL"})
    assert lines and all(line.startswith("constraint t.") for line in lines), lines
    assert any("missing after" in line for line in lines), lines


def test_a_migration_down_that_forgets_an_index_is_found(db):
    """The rehearsal's own use: ``down`` leaving a migration's index behind is a difference."""
    runner = MigrationRunner(db)
    runner.up(to=1)
    before = introspect(db)
    runner.up()
    runner.down(to=1)
    assert diff(before, introspect(db)) == []
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("CREATE INDEX IX_SesionesChat_Stray ON SesionesChat (Estado)")
    assert lowered(diff(before, introspect(db))) == ["index sesioneschat.ix_sesioneschat_stray added"]
