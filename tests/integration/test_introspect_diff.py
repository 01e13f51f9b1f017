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


def test_a_migrated_database_introspects_as_its_tables_without_the_runners_history(db):
    MigrationRunner(db).up()
    schema = introspect(db)
    tables = {t.lower() for t in schema}
    assert {"mensajesprocesados", "mensajessalientes", "reportes", "sesioneschat"} <= tables, tables
    assert not any(t.startswith("sqlite_") or t == "botctl_schema_history" for t in tables), tables
    assert all(set(parts) == {"columns", "indexes", "constraints"} for parts in schema.values())
    outbox = next(parts for t, parts in schema.items() if t.lower() == "mensajessalientes")
    assert outbox["columns"] and outbox["indexes"] and outbox["constraints"], outbox


def columns_of(db) -> dict:
    return {c.lower(): v for c, v in next(p for t, p in introspect(db).items() if t.lower() == "t")["columns"].items()}


def test_each_column_attribute_is_read(base):
    db, before = base
    cols = columns_of(db)
    assert cols["c"]["nullable"] is True and cols["a"]["nullable"] is False
    if db.dialect == "sqlite":
        assert (cols["id"]["pk"], cols["a"]["pk"]) == (1, 0)
        assert (cols["a"]["type"], cols["b"]["type"], cols["a"]["default"]) == ("INTEGER", "VARCHAR(20)", "0")
    else:
        assert (cols["b"]["type"], cols["b"]["length"], cols["c"]["precision"]) == ("character varying", 20, 32)
        assert cols["a"]["default"] == "0" and cols["id"]["identity"] is False


def test_a_type_spelt_in_another_case_is_no_difference(base):
    """SQLite keeps the declared spelling; the introspection upper-cases it."""
    db, before = base
    create(db, columns={**BASE, "C": "integer NULL"})
    assert diff(before, introspect(db)) == []
    if db.dialect == "sqlite":
        assert columns_of(db)["c"]["type"] == "INTEGER"


def exact(base, **kwargs) -> list[str]:
    """The diff after recreating T with one change, as written (attribute names included)."""
    db, before = base
    create(db, **kwargs)
    return diff(before, introspect(db))


def test_exact_lines_for_a_type_a_length_and_a_primary_key(base):
    db, _ = base
    sqlite = db.dialect == "sqlite"
    assert exact(base, columns={**BASE, "C": "BIGINT NULL"}) == (
        ["column T.C: type 'INTEGER' -> 'BIGINT'"] if sqlite else
        ["column t.c: precision 32 -> 64", "column t.c: type 'integer' -> 'bigint'"])
    assert exact(base, columns={**BASE, "B": "VARCHAR(40) NULL"}) == (
        ["column T.B: type 'VARCHAR(20)' -> 'VARCHAR(40)'"] if sqlite else ["column t.b: length 20 -> 40"])
    moved = {**BASE, "Id": "INTEGER NOT NULL", "A": "INTEGER NOT NULL DEFAULT 0 CONSTRAINT PK_T PRIMARY KEY"}
    lines = exact(base, columns=moved)
    if sqlite:
        assert "column T.Id: pk 1 -> 0" in lines and "column T.A: pk 0 -> 1" in lines, lines
    else:
        assert lines == ["constraint t.pk_t: 'PRIMARY KEY (id)' -> 'PRIMARY KEY (a)'",
                         "index t.pk_t: 'CREATE UNIQUE INDEX pk_t ON public.t USING btree (id)' -> "
                         "'CREATE UNIQUE INDEX pk_t ON public.t USING btree (a)'"], lines


def test_datetime_precision_and_identity_changes(base):
    db, _ = base
    create(db, columns={**BASE, "D": "TIMESTAMP(3) NULL"})
    before = introspect(db)
    create(db, columns={**BASE, "D": "TIMESTAMP(6) NULL"})
    lines = diff(before, introspect(db))
    assert lines == (["column T.D: type 'TIMESTAMP(3)' -> 'TIMESTAMP(6)'"] if db.dialect == "sqlite"
                     else ["column t.d: datetime_precision 3 -> 6"]), lines
    if db.dialect == "postgresql":
        create(db, columns={**BASE, "Id": "INTEGER GENERATED BY DEFAULT AS IDENTITY CONSTRAINT PK_T PRIMARY KEY"})
        lines = diff(before, introspect(db))
        assert "column t.id: identity False -> True" in lines, lines


def test_exact_lines_for_index_changes(base):
    db, _ = base
    if db.dialect == "sqlite":
        assert exact(base, indexes={"IX_T_C": "(C, A)"}) == [
            "index T.IX_T_C: columns ['C'] -> ['C', 'A']",
            "index T.IX_T_C: sql 'CREATE INDEX IX_T_C ON T (C)' -> 'CREATE INDEX IX_T_C ON T (C, A)'"]
        lines = exact(base, indexes={"IX_T_C": "u(C)"})
        assert "index T.IX_T_C: unique False -> True" in lines, lines
        lines = exact(base, indexes={"IX_T_C": "(C) WHERE C > 0"})
        assert "index T.IX_T_C: partial False -> True" in lines, lines
        indexes = next(p for t, p in introspect(db).items() if t == "T")["indexes"]
        origins = {name: index["origin"] for name, index in indexes.items()}
        assert origins["IX_T_C"] == "c" and sorted(origins.values()) == ["c", "u"], origins  # UQ_T_B's own index
    else:
        assert exact(base, indexes={"IX_T_C": "(C, A)"}) == [
            "index t.ix_t_c: 'CREATE INDEX ix_t_c ON public.t USING btree (c)' -> "
            "'CREATE INDEX ix_t_c ON public.t USING btree (c, a)'"]


def test_an_index_written_with_other_whitespace_is_no_difference(base):
    db, _ = base
    create(db, indexes={"IX_T_C": "(C,   A)"})
    before = introspect(db)
    create(db, indexes={"IX_T_C": "(C,\n        A)"})
    assert diff(before, introspect(db)) == []


def test_a_foreign_keys_actions_are_compared(base):
    db, _ = base
    lines = changed(base, columns={**BASE, "P": "INTEGER NULL CONSTRAINT FK_T_P REFERENCES P (PId) ON DELETE CASCADE"})
    if db.dialect == "sqlite":
        owner = exact(base, columns={**BASE, "Owner": "INTEGER NULL REFERENCES P (PId)"})
        assert "constraint T.foreign key Owner -> P.PId added" in owner, owner
        assert lines == ["constraint t.fk_t_p: 'references p (pid)' -> 'references p (pid) on delete cascade'",
                         "constraint t.foreign key p -> p.pid: 'on update no action on delete no action' -> "
                         "'on update no action on delete cascade'"], lines
    else:
        assert lines == ["constraint t.fk_t_p: 'foreign key (p) references p(pid)' -> "
                         "'foreign key (p) references p(pid) on delete cascade'"], lines


def test_sqlite_named_constraints_are_read_from_the_table_sql():
    from migrations.introspect import _sqlite_named_constraints

    sql = ("CREATE TABLE T (AX INTEGER CONSTRAINT CK_AX CHECK (AX >= 0), "
           "A INTEGER constraint CK_A CHECK (A IN (1, 2)) CONSTRAINT DF_A DEFAULT 1, "
           "B TEXT CONSTRAINT [CK_B] CHECK (B <> 'x,)' AND B <> \"y)\"), "
           "CONSTRAINT \"PK_AB\" PRIMARY   KEY (A,   B), CONSTRAINT `FK_B` FOREIGN KEY (B) REFERENCES UX (B))")
    assert _sqlite_named_constraints(sql) == {
        "CK_AX": "CHECK (AX >= 0)", "CK_A": "CHECK (A IN (1, 2))", "DF_A": "DEFAULT 1", "CK_B": "CHECK (B <> 'x,)' AND B <> \"y)\")",
        "PK_AB": "PRIMARY KEY (A, B)", "FK_B": "FOREIGN KEY (B) REFERENCES UX (B)"}
    assert _sqlite_named_constraints("CREATE TABLE T (A INT CONSTRAINT NN_A NOT NULL") == {"NN_A": "NOT NULL"}


def test_diff_of_hand_made_schemas_names_every_kind_and_attribute():
    before = {"T": {"columns": {"A": {"type": "INT", "default": "0"}, "B": {"type": "INT"}},
                    "indexes": {"IX": "CREATE INDEX IX ON T (A)"}, "triggers": {"TR": "x"}},
              "Gone": {"columns": {}}}
    after = {"T": {"columns": {"A": {"type": "INT"}, "C": {"type": "INT"}},
                   "indexes": {"IX": "CREATE INDEX IX ON T (A, B)"}, "constraints": {"CK": "CHECK (A > 0)"}},
             "New": {"columns": {}}}
    assert diff(before, after) == [
        "table Gone missing after",
        "table New added",
        "column T.A: default '0' -> None",
        "column T.B missing after",
        "column T.C added",
        "constraint T.CK added",
        "index T.IX: 'CREATE INDEX IX ON T (A)' -> 'CREATE INDEX IX ON T (A, B)'",
        "triggers T.TR missing after",
    ]
    assert diff(after, after) == [] and diff({}, {}) == []
    mixed = diff({"T": {"indexes": {"IX": {"columns": ["A"]}}}}, {"T": {"indexes": {"IX": "CREATE INDEX IX ON T (A)"}}})
    assert mixed == ["index T.IX: {'columns': ['A']} -> 'CREATE INDEX IX ON T (A)'"]
