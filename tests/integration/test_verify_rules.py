"""Every rule of the load test's verifier, planted one at a time.

A fabricated run: the plan of a small load test, every delivery acknowledged, and the
rows a correct bot writes for it (one inbox row, one user chat row and one reply per
message, one report per confirmed conversation) in a real migrated SQLite database.
That run verifies clean; each test then plants exactly one violation and asserts the
verifier names it, counts it and fails the run. ``botctl loadtest --verify`` exits 1 on
a verify violation alone (every threshold passing).
"""

from __future__ import annotations

import json

import pytest

from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from ops.loadtest.traffic import Delivery, TrafficSpec, build_plan
from ops.loadtest.verify import verify_run
from tests.conftest import botctl
from tests.e2e.servers import APP_SECRET
from tests.integration.test_loadtest import StallingServer
from tests.reliability.harness import Row

SPEC = TrafficSpec(rate=10, duration_s=1.2, gap_s=0.2, dup_ratio=0.3, burst=3, seed=5, run_id="ABCD1234")


def execute(db, sql: str, params: tuple = ()) -> None:
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            cur.execute(sql, params)


def acknowledge(plan: list[Delivery]) -> None:
    """Every delivery sent once at its due time and acknowledged 10 ms later."""
    for d in plan:
        d.attempts, d.acked, d.sent_at, d.acked_at, d.statuses = 1, True, d.due, d.due + 0.01, [200]


def write_correct_rows(db, plan: list[Delivery]) -> None:
    firsts = {d.wamid: d for d in plan if not d.duplicate}
    for n, d in enumerate(firsts.values()):
        execute(db, "INSERT INTO MensajesProcesados (MensajeId, Estado, Telefono) VALUES (?, 'PROCESADO', ?)",
                (d.wamid, d.telefono))
        execute(db, "INSERT INTO MensajesChat (Telefono, Tipo, Contenido, MensajeId) VALUES (?, 'U', 'x', ?)",
                (d.telefono, d.wamid))
        execute(db, "INSERT INTO MensajesSalientes (MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido) "
                    "VALUES (?, 0, ?, 'text', 'ok')", (d.wamid, d.telefono))
        if d.step == 1 and d.conversation is not None:
            execute(db, "INSERT INTO Reportes (NumeroTicket, Telefono, TipoReporte, Estado, MensajeOrigenId) "
                        "VALUES (?, ?, 'REFRIGERADOR', 'PENDIENTE', ?)", (f"T-{n}", d.telefono, d.wamid))


@pytest.fixture
def run(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'verify.db'}")
    MigrationRunner(db).up()
    plan = build_plan(SPEC, APP_SECRET)
    acknowledge(plan)
    write_correct_rows(db, plan)
    return db, plan


def verify(run) -> dict:
    db, plan = run
    return verify_run(db, plan, SPEC.run_id, drain_timeout_s=0)


def a_message(plan, step: int = 0) -> Delivery:
    return next(d for d in plan if d.conversation is not None and d.step == step and not d.duplicate)


def assert_only(result: dict, key: str, count: int, fragment: str) -> None:
    assert result[key] == count, result
    assert not result["ok"] and len(result["violations"]) == 1, result["violations"]
    assert fragment in result["violations"][0], result["violations"]
    # The reliability table's row fails on it too, not only in its notes.
    row = Row.from_verify("planted", {"requests": 1, "http_5xx": 0}, [], result, 0)
    assert not row.ok and row.notes == result["violations"], row


def test_the_fabricated_run_is_clean_and_shaped_like_a_real_one(run):
    db, plan = run
    result = verify(run)
    assert result["ok"] and result["violations"] == [], result["violations"]
    conversations = {d.conversation for d in plan if d.conversation is not None and d.step == 1}
    assert result["confirmed_conversations"] == result["reports"] == len(conversations) > 2
    assert any(d.duplicate for d in plan if not d.burst) and sum(d.burst for d in plan) == 3
    assert result["inbox_rows"] == result["distinct_ids_sent"] == result["distinct_ids_acked"]
    assert Row.from_verify("clean", {"requests": 1, "http_5xx": 0}, plan, result, 0).ok
    for key in ("lost", "unexpected", "unprocessed", "duplicates", "duplicate_reports", "duplicate_replies",
                "replies_lost"):
        assert result[key] == 0, key


def test_an_acknowledged_message_without_its_inbox_row_is_lost(run):
    db, plan = run
    execute(db, "DELETE FROM MensajesProcesados WHERE MensajeId = ?", (a_message(plan).wamid,))
    assert_only(verify(run), "lost", 1, f"1 acknowledged deliveries have no inbox row (e.g. {a_message(plan).wamid})")


def test_a_message_never_acknowledged_may_be_missing(run):
    db, plan = run
    victim = a_message(plan)
    execute(db, "DELETE FROM MensajesProcesados WHERE MensajeId = ?", (victim.wamid,))
    for d in plan:
        if d.wamid == victim.wamid:
            d.acked, d.acked_at = False, None
    result = verify(run)
    assert result["lost"] == 0 and not any("no inbox row" in v for v in result["violations"])


def test_an_inbox_row_for_an_id_never_sent_is_unexpected(run):
    db, plan = run
    execute(db, "INSERT INTO MensajesProcesados (MensajeId, Estado) VALUES (?, 'PROCESADO')",
            (f"wamid.LT{SPEC.run_id}.999.0",))
    execute(db, "INSERT INTO MensajesSalientes (MensajeOrigenId, Secuencia, Telefono, Tipo, Contenido) "
                "VALUES (?, 0, '1', 'text', 'ok')", (f"wamid.LT{SPEC.run_id}.999.0",))
    assert_only(verify(run), "unexpected", 1, "1 inbox rows for ids never sent (e.g. wamid.LTABCD1234.999.0)")


def test_rows_of_another_run_are_not_this_runs_business(run):
    db, _ = run
    execute(db, "INSERT INTO MensajesProcesados (MensajeId, Estado) VALUES ('wamid.LTFFFF0000.1.0', 'PENDIENTE')")
    assert verify(run)["ok"]


@pytest.mark.parametrize("state", ["PENDIENTE", "PROCESANDO", "FALLIDO"])
def test_an_inbox_row_left_unprocessed_after_the_drain(run, state):
    db, plan = run
    execute(db, "UPDATE MensajesProcesados SET Estado = ? WHERE MensajeId = ?", (state, a_message(plan).wamid))
    assert_only(verify(run), "unprocessed", 1, "1 inbox rows not processed after the drain")


def test_a_message_acted_on_twice(run):
    db, plan = run
    d = a_message(plan)
    execute(db, "INSERT INTO MensajesChat (Telefono, Tipo, Contenido, MensajeId) VALUES (?, 'U', 'x', ?)",
            (d.telefono, d.wamid))
    assert_only(verify(run), "duplicates", 1, f"1 messages acted on more than once (e.g. {d.wamid})")


def test_the_bots_own_chat_rows_are_not_acting_twice(run):
    db, plan = run
    d = a_message(plan)
    execute(db, "INSERT INTO MensajesChat (Telefono, Tipo, Contenido, MensajeId) VALUES (?, 'B', 'y', ?)",
            (d.telefono, d.wamid))
    assert verify(run)["ok"]


def test_a_processed_message_without_replies(run):
    db, plan = run
    d = a_message(plan)
    execute(db, "DELETE FROM MensajesSalientes WHERE MensajeOrigenId = ?", (d.wamid,))
    assert_only(verify(run), "replies_lost", 1, f"1 processed messages without replies (e.g. {d.wamid})")


def test_a_second_report_for_one_phone_is_a_duplicate(run):
    db, plan = run
    d = a_message(plan, step=1)
    execute(db, "INSERT INTO Reportes (NumeroTicket, Telefono, TipoReporte, Estado, MensajeOrigenId) "
                "VALUES ('DUP-1', ?, 'REFRIGERADOR', 'PENDIENTE', ?)", (d.telefono, d.wamid + "x"))
    assert_only(verify(run), "duplicate_reports", 1, "1 duplicate reports")


def test_two_reports_from_one_message_are_a_duplicate(run):
    db, plan = run
    d = a_message(plan, step=1)
    execute(db, "DROP INDEX UX_Reportes_MensajeOrigenId")  # the schema forbids it: plant it without that guard
    execute(db, "INSERT INTO Reportes (NumeroTicket, Telefono, TipoReporte, Estado, MensajeOrigenId) "
                "VALUES ('DUP-2', '5599', 'REFRIGERADOR', 'PENDIENTE', ?)", (d.wamid,))
    assert_only(verify(run), "duplicate_reports", 1, "1 duplicate reports")


def test_a_confirmed_conversation_without_its_report(run):
    db, plan = run
    execute(db, "DELETE FROM Reportes WHERE MensajeOrigenId = ?", (a_message(plan, step=1).wamid,))
    result = verify(run)
    assert result["reports"] == result["confirmed_conversations"] - 1
    assert result["reports_off"] == 1
    assert_only(result, "duplicate_reports", 0,
                f"{result['reports']} reports for {result['confirmed_conversations']} confirmed conversations")


def test_a_report_for_a_conversation_never_confirmed(run):
    db, plan = run
    confirm = a_message(plan, step=1)
    for d in plan:  # the confirmation never reached the bot: its conversation cannot have a report
        if d.wamid == confirm.wamid:
            d.attempts, d.acked, d.sent_at, d.acked_at = 0, False, None, None
    execute(db, "DELETE FROM MensajesProcesados WHERE MensajeId = ?", (confirm.wamid,))
    execute(db, "DELETE FROM MensajesChat WHERE MensajeId = ?", (confirm.wamid,))
    execute(db, "DELETE FROM MensajesSalientes WHERE MensajeOrigenId = ?", (confirm.wamid,))
    result = verify(run)
    assert result["reports"] == result["confirmed_conversations"] + 1 and result["reports_off"] == 1
    assert_only(result, "duplicate_reports", 0, "reports for")
    execute(db, "DELETE FROM Reportes WHERE MensajeOrigenId = ?", (confirm.wamid,))
    assert verify(run)["ok"]


def test_a_conversation_confirmed_before_its_first_message_was_acknowledged_may_have_no_report(run):
    db, plan = run
    confirm = a_message(plan, step=1)
    confirm.sent_at = confirm.predecessor.acked_at - 0.005  # sent before the first was answered
    execute(db, "DELETE FROM Reportes WHERE MensajeOrigenId = ?", (confirm.wamid,))
    result = verify(run)
    assert result["ok"], result["violations"]
    assert result["reports"] == result["confirmed_conversations"]


def test_a_reply_written_twice(run, tmp_path):
    db, plan = run
    d = a_message(plan)
    # The schema forbids it (UNIQUE (MensajeOrigenId, Secuencia)): plant it where that guard is gone.
    execute(db, "ALTER TABLE MensajesSalientes RENAME TO MensajesSalientesOld")
    execute(db, "CREATE TABLE MensajesSalientes AS SELECT * FROM MensajesSalientesOld")
    execute(db, "INSERT INTO MensajesSalientes SELECT * FROM MensajesSalientesOld WHERE MensajeOrigenId = ?",
            (d.wamid,))
    assert_only(verify(run), "duplicate_replies", 1, "1 (message, sequence) replies written more than once")


def test_each_violation_is_reported_together_with_the_others(run):
    db, plan = run
    a, b = [d for d in plan if d.conversation is not None and d.step == 0 and not d.duplicate][:2]
    execute(db, "DELETE FROM MensajesProcesados WHERE MensajeId = ?", (a.wamid,))
    execute(db, "DELETE FROM MensajesSalientes WHERE MensajeOrigenId = ?", (b.wamid,))
    execute(db, "INSERT INTO MensajesChat (Telefono, Tipo, Contenido, MensajeId) VALUES (?, 'U', 'x', ?)",
            (b.telefono, b.wamid))
    result = verify(run)
    assert (result["lost"], result["replies_lost"], result["duplicates"]) == (1, 1, 1)
    assert len(result["violations"]) == 3 and not result["ok"]


def test_loadtest_exits_1_on_a_verify_violation_alone(tmp_path):
    """Every threshold passes, but the database verified holds none of the run: all lost."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    MigrationRunner(open_database(url)).up()
    summary_path = tmp_path / "summary.json"
    with StallingServer(stall_from=99, stall_s=0) as server:
        r = botctl("loadtest", "--url", f"http://127.0.0.1:{server.port}/webhook", "--rate", "20",
                   "--duration", "0.5", "--threshold", "errors==0", "--verify", "--db", url,
                   "--summary", str(summary_path), "-q", env={"BOTCTL_APP_SECRET": APP_SECRET})
    summary = json.loads(summary_path.read_text())
    assert all(t["passed"] for t in summary["thresholds"]) and summary["errors"] == 0
    assert summary["verify"]["lost"] == summary["verify"]["distinct_ids_acked"] > 0
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "failed: " in r.stderr and "acknowledged deliveries have no inbox row" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_report_count_strictly_inside_its_bounds_is_fine(run):
    """Two conversations confirmed before their first message was answered: each may or may not
    have its report (confirmed < reports < both acknowledged)."""
    db, plan = run
    confirms = [d for d in plan if d.conversation is not None and d.step == 1 and not d.duplicate][:2]
    for confirm in confirms:
        confirm.sent_at = confirm.predecessor.acked_at - 0.005
    execute(db, "DELETE FROM Reportes WHERE MensajeOrigenId = ?", (confirms[0].wamid,))
    result = verify(run)
    assert result["confirmed_conversations"] < result["reports"] and result["ok"], result["violations"]
    assert result["reports_off"] == 0


def test_a_confirmation_sent_the_instant_the_first_was_answered_counts_as_confirmed(run):
    db, plan = run
    confirm = a_message(plan, step=1)
    confirm.sent_at = confirm.predecessor.acked_at
    execute(db, "DELETE FROM Reportes WHERE MensajeOrigenId = ?", (confirm.wamid,))
    assert_only(verify(run), "reports_off", 1, "reports for")


def test_a_report_whose_first_message_was_never_acknowledged(run):
    db, plan = run
    confirm = a_message(plan, step=1)
    first = confirm.predecessor
    for d in plan:
        if d.wamid == first.wamid:
            d.acked, d.acked_at = False, None
    execute(db, "DELETE FROM MensajesProcesados WHERE MensajeId = ?", (first.wamid,))
    execute(db, "DELETE FROM MensajesChat WHERE MensajeId = ?", (first.wamid,))
    execute(db, "DELETE FROM MensajesSalientes WHERE MensajeOrigenId = ?", (first.wamid,))
    result = verify(run)  # the confirmation alone cannot have made a report
    assert result["reports"] == result["confirmed_conversations"] + 1
    assert_only(result, "reports_off", 1, "reports for")


def test_verify_waits_for_rows_still_being_processed(run):
    import threading
    import time

    db, plan = run
    d = a_message(plan)
    execute(db, "UPDATE MensajesProcesados SET Estado = 'PROCESANDO' WHERE MensajeId = ?", (d.wamid,))

    def finish():
        time.sleep(0.6)
        execute(db, "UPDATE MensajesProcesados SET Estado = 'PROCESADO' WHERE MensajeId = ?", (d.wamid,))

    worker = threading.Thread(target=finish)
    worker.start()
    try:
        result = verify_run(db, plan, SPEC.run_id, drain_timeout_s=30)
    finally:
        worker.join()
    assert result["ok"], result["violations"]


def test_wait_for_drain_gives_up_at_its_deadline_and_counts_only_the_run(run):
    from ops.loadtest.verify import wait_for_drain

    db, plan = run
    execute(db, "UPDATE MensajesProcesados SET Estado = 'PENDIENTE' WHERE MensajeId = ?", (a_message(plan).wamid,))
    execute(db, "INSERT INTO MensajesProcesados (MensajeId, Estado) VALUES ('wamid.LTFFFF0000.1.0', 'PENDIENTE')")
    assert wait_for_drain(db, f"wamid.LT{SPEC.run_id}.%", timeout_s=0.3) == 1
    assert wait_for_drain(db, "wamid.LTEEEE0000.%", timeout_s=0.3) == 0


def test_locking_retries_are_counted_from_the_servers_telemetry(run, tmp_path):
    from ops.loadtest.verify import count_events

    db, plan = run
    rows = [{"message": "[ConcurrencyRetry] Intento 1/3", "customDimensions": {"event_name": "concurrency.retry"}},
            {"message": "x", "customDimensions": {"event_name": "message.processed"}},
            {"message": "mentions concurrency.retry", "customDimensions": {"event_name": "concurrency.exhausted"}},
            {"message": "concurrency.retry", "customDimensions": {"event_name": "concurrency.exhausted"}},
            {"message": "[ConcurrencyRetry] Intento 2/3", "customDimensions": {"event_name": "concurrency.retry"}}]
    telemetry = tmp_path / "telemetry.jsonl"
    telemetry.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = verify_run(db, plan, SPEC.run_id, drain_timeout_s=0, telemetry_path=str(telemetry))
    assert result["concurrency_retries"] == 2 and result["ok"]
    assert count_events(str(telemetry), "message.processed") == 1
    assert count_events(str(tmp_path / "missing.jsonl"), "concurrency.retry") is None
    assert count_events(None, "concurrency.retry") is None and verify(run)["concurrency_retries"] is None


def test_a_reply_to_someone_other_than_the_sender(run):
    db, plan = run
    d = a_message(plan)
    execute(db, "UPDATE MensajesSalientes SET Telefono = '5219999999999' WHERE MensajeOrigenId = ?", (d.wamid,))
    assert_only(verify(run), "misaddressed", 1,
                f"1 messages answered to someone other than their sender (e.g. {d.wamid})")


def test_users_known_only_by_a_bsuid_and_their_reports_are_counted(tmp_path):
    spec = TrafficSpec(rate=10, duration_s=1.2, gap_s=0.2, seed=5, run_id=SPEC.run_id, bsuid_share=0.25)
    db = open_database(f"sqlite:///{tmp_path / 'bsuid.db'}")
    MigrationRunner(db).up()
    plan = build_plan(spec, APP_SECRET)
    acknowledge(plan)
    write_correct_rows(db, plan)
    result = verify_run(db, plan, spec.run_id, drain_timeout_s=0)
    users = {d.telefono for d in plan}
    bsuid_users = {u for u in users if u.startswith("MX.")}
    bsuid_reports = [d for d in plan if d.step == 1 and not d.duplicate and d.telefono in bsuid_users]
    # Fewer BSUID users than phone users, so counting the wrong side cannot come out the same.
    assert 0 < len(bsuid_users) < len(users) - len(bsuid_users)
    assert 0 < len(bsuid_reports) < result["reports"] - len(bsuid_reports)
    assert result["ok"], result["violations"]
    assert (result["bsuid_users"], result["bsuid_reports"]) == (len(bsuid_users), len(bsuid_reports))


def test_a_confirmation_whose_first_message_is_not_in_the_plan_cannot_make_a_report(run):
    """A plan cut to its confirmation: that conversation counts in neither bound, so its report is one too many."""
    db, plan = run
    first = a_message(plan, step=1).predecessor
    for table, column in (("MensajesProcesados", "MensajeId"), ("MensajesChat", "MensajeId"),
                          ("MensajesSalientes", "MensajeOrigenId")):
        execute(db, f"DELETE FROM {table} WHERE {column} = ?", (first.wamid,))
    cut = [d for d in plan if d.wamid != first.wamid]
    result = verify_run(db, cut, SPEC.run_id, drain_timeout_s=0)
    assert result["reports"] == result["confirmed_conversations"] + 1
    assert_only(result, "reports_off", 1, "reports for")


def test_acknowledgements_without_their_times_confirm_nothing(run):
    """A closed-model run (``saturate``) records that a delivery was acknowledged but not when:
    no conversation is known to be confirmed, and every report is within the upper bound."""
    db, plan = run
    for d in plan:
        if d.step == 0:
            d.acked_at = None
    result = verify(run)
    assert result["confirmed_conversations"] == 0 < result["reports"]
    assert result["ok"], result["violations"]
