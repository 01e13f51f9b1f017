"""The migration runner against real SQLite and real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot_core.storage import open_database
from migrations.introspect import diff, introspect
from migrations.rehearse import rehearse
from migrations.runner import HISTORY_TABLE, MigrationBlocked, MigrationError, MigrationRunner
from migrations.scripts import load_migrations
from tests.conftest import ROOT, botctl


def history_rows(db):
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT version, direction, success FROM {HISTORY_TABLE} ORDER BY installed_rank")
        rows = [(r[0], r[1], int(r[2])) for r in cur.fetchall()]
        conn.rollback()
        return rows


def test_each_down_restores_the_schema_before_its_up(db):
    runner = MigrationRunner(db)
    before = {}
    for m in runner.migrations:
        before[m.version] = introspect(db)
        runner.up(to=m.version)
    after_all = introspect(db)
    assert "mensajessalientes" in {t.lower() for t in after_all}
    for m in reversed(runner.migrations[1:]):
        runner.down(to=m.version - 1)
        assert diff(before[m.version], introspect(db)) == [], f"down of {m.version_label}"
    runner.up()
    assert diff(after_all, introspect(db)) == []
    assert [s.state for s in runner.status()] == ["applied"] * 6


def test_rehearse_reports_identical_schemas(db):
    evidence = rehearse(db)
    assert evidence["identical"] is True
    assert [s["action"] for s in evidence["steps"]][-1] == "up"
    assert len(evidence["steps"]) == 2 * len(evidence["versions"])


def test_rehearse_refuses_a_database_with_tables(db):
    MigrationRunner(db).up(to=0)
    with pytest.raises(Exception, match="empty scratch database"):
        rehearse(db)


def _production_like(db):
    """The pre-phase-1 schema created the way production has it (no history), with rows."""
    baseline = load_migrations(db.dialect)[0].up
    runner = MigrationRunner(db)
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            runner._execute(cur, baseline)
            cur.execute("INSERT INTO Equipos (CodigoSAP, Tipo, Descripcion) VALUES (?, ?, ?)",
                        ("4001234", "REFRIGERADOR", "Refri tienda 12"))
            for i in range(5):
                cur.execute("INSERT INTO SesionesChat (Telefono, Estado, DatosTemp) VALUES (?, ?, ?)",
                            (f"52155500000{i}", "REFRI_ESPERA_SAP", '{"tipo": "refri"}'))
                cur.execute("INSERT INTO MensajesProcesados (MensajeId) VALUES (?)", (f"wamid.OLD{i}",))


def test_baseline_adopts_a_production_database_and_keeps_its_data(db):
    _production_like(db)
    runner = MigrationRunner(db)
    assert runner.baseline().direction == "baseline"
    runner.up()
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*), MIN(Version), MAX(Version), MIN(Estado) FROM SesionesChat")
        assert tuple(cur.fetchone()) == (5, 0, 0, "REFRI_ESPERA_SAP")
        cur.execute("SELECT COUNT(*), MIN(Reintentos), MIN(Estado) FROM MensajesProcesados")
        # Rows processed by the old code count as processed, not as work for the new inbox.
        assert tuple(cur.fetchone()) == (5, 0, "PROCESADO")
        cur.execute("SELECT CodigoSAP FROM Equipos")
        assert cur.fetchone()[0] == "4001234"
        conn.rollback()
    assert history_rows(db)[0] == ("000", "baseline", 1)
    with pytest.raises(MigrationBlocked, match="already has migration history"):
        runner.baseline()


def test_two_concurrent_up_processes_apply_each_version_once(db_url):
    procs = [subprocess.Popen([sys.executable, "-m", "cli.app", "migrate", "up", "--db", db_url],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], results
    outputs = sorted(r[1] for r in results)
    assert sum("nothing to do" in o for o in outputs) + sum("6 migration(s) up" in o for o in outputs) == 2, outputs
    ups = [r for r in history_rows(open_database(db_url)) if r[1] == "up"]
    assert sorted(r[0] for r in ups) == ["000", "001", "002", "003", "004", "005"]


def test_a_failing_migration_changes_neither_schema_nor_history(db, copy_migrations):
    folder = copy_migrations(db.dialect)
    (folder / "006_broken.up.sql").write_text(
        "ALTER TABLE Reportes ADD COLUMN Prioridad INTEGER NULL;\n"
        "CREATE INDEX IX_Reportes_Prioridad ON Reportes (Prioridad);\n"
        "ALTER TABLE TablaQueNoExiste ADD COLUMN X INTEGER NULL;\n")
    (folder / "006_broken.down.sql").write_text("ALTER TABLE Reportes DROP COLUMN Prioridad;\n")
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    runner.up(to=5)
    schema, history = introspect(db), history_rows(db)
    with pytest.raises(MigrationError) as err:
        runner.up()
    message = str(err.value)
    assert "006_broken.up.sql" in message and "statement 3" in message and "line 3" in message
    assert "TablaQueNoExiste" in message
    assert diff(schema, introspect(db)) == []
    assert history_rows(db) == history


def test_an_edited_applied_file_is_reported_and_blocks_up(db, copy_migrations):
    folder = copy_migrations(db.dialect)
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    runner.up(to=2)
    path = folder / "001_add_version_column.up.sql"
    path.write_text(path.read_text() + "\n-- an innocent-looking edit\n")
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    problems = runner.validate()
    assert [(p.kind, p.version) for p in problems] == [("checksum", "001")]
    with pytest.raises(MigrationBlocked, match="001_add_version_column.up.sql was edited"):
        runner.up()
    assert [s.state for s in runner.status()][:4] == ["applied", "changed", "applied", "pending"]
    # repair realigns the checksum; then up goes on.
    assert runner.repair() == ["realigned checksum of 001_add_version_column.up.sql"]
    assert runner.validate() == []
    assert [a.version for a in runner.up()] == ["003", "004", "005"]


def test_validate_reports_missing_and_out_of_order(db, copy_migrations):
    folder = copy_migrations(db.dialect)
    head = load_migrations(db.dialect, folder)[-1]
    n, later = head.version, head.version + 1
    # The head migration is applied under the next number, leaving its own number free.
    for part in ("up", "down"):
        (folder / f"{n:03d}_{head.up.slug}.{part}.sql").rename(folder / f"{later:03d}_{head.up.slug}.{part}.sql")
    MigrationRunner(db, load_migrations(db.dialect, folder)).up()
    # Out of order: a migration numbered below one already applied appears.
    (folder / f"{n:03d}_late.up.sql").write_text("CREATE TABLE Late (Id INTEGER NOT NULL);\n")
    (folder / f"{n:03d}_late.down.sql").write_text("DROP TABLE Late;\n")
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    assert [(p.kind, p.version) for p in runner.validate()] == [("out-of-order", f"{n:03d}")]
    with pytest.raises(MigrationBlocked):
        runner.up()
    # Missing: an applied migration's file is gone (reported together with the out-of-order one).
    for part in ("up", "down"):
        (folder / f"{later:03d}_{head.up.slug}.{part}.sql").unlink()
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    assert sorted((p.kind, p.version) for p in runner.validate()) == [
        ("missing", f"{later:03d}"), ("out-of-order", f"{n:03d}")]


def test_transaction_off_failure_is_recorded_and_repair_clears_it(db, copy_migrations):
    folder = copy_migrations(db.dialect)
    (folder / "006_concurrent_index.up.sql").write_text(
        "-- botctl: transaction=off\n"
        "CREATE INDEX IX_Reportes_Estado ON Reportes (Estado);\n"
        "CREATE INDEX IX_Nope ON NoSuchTable (X);\n")
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    with pytest.raises(MigrationError, match="006_concurrent_index.up.sql statement 2"):
        runner.up()
    assert history_rows(db)[-1] == ("006", "up", 0)
    assert [p.kind for p in runner.validate()] == ["failed"]
    with pytest.raises(MigrationBlocked, match="repair"):
        runner.up()
    # The operator fixes the database by hand, then repairs and re-runs a fixed script.
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute("DROP INDEX IX_Reportes_Estado")
    assert runner.repair() == ["cleared failed up of 006_concurrent_index.up.sql"]
    (folder / "006_concurrent_index.up.sql").write_text(
        "-- botctl: transaction=off\nCREATE INDEX IX_Reportes_Estado ON Reportes (Estado);\n")
    runner = MigrationRunner(db, load_migrations(db.dialect, folder))
    assert [a.version for a in runner.up()] == ["006"]
    assert runner.validate() == []


def test_migrate_cli_round_trip_and_status_exit_codes(db_url):
    # A SQLite file that does not exist yet is a usage error (status never creates it);
    # an empty server database has everything pending.
    assert botctl("migrate", "status", "--db", db_url).returncode == (2 if db_url.startswith("sqlite") else 1)
    r = botctl("migrate", "up", "--to", "2", "--db", db_url)
    assert r.returncode == 0, r.stderr
    r = botctl("migrate", "status", "--db", db_url, "--output", "json")
    import json

    states = [s["state"] for s in json.loads(r.stdout)]
    assert (r.returncode, states) == (1, ["applied", "applied", "applied", "pending", "pending", "pending"])
    assert botctl("migrate", "up", "--db", db_url).returncode == 0
    assert botctl("migrate", "status", "--db", db_url).returncode == 0
    assert botctl("migrate", "validate", "--db", db_url).returncode == 0
    r = botctl("migrate", "down", "--to", "000", "--db", db_url)
    assert r.returncode == 0 and "5 migration(s) down" in r.stderr
    states = [s["state"] for s in json.loads(botctl("migrate", "status", "--db", db_url, "-o", "json").stdout)]
    assert states == ["applied", "pending", "pending", "pending", "pending", "pending"]
