"""After a load run: the database invariants that say nothing was lost or done twice.

* every delivery that was acknowledged has its inbox row (none lost), and no
  row exists for an id that was never sent;
* after the drain, every inbox row of the run is processed;
* each message was acted on once (one user row in MensajesChat per message);
* one report per confirmed conversation, no conversation with two reports;
* every processed message has its replies, no (message, sequence) twice;
* every reply goes to whoever wrote: the phone, or for a user without one the BSUID.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot_core.storage import Database
from ops.loadtest.traffic import Delivery


def _rows(db: Database, sql: str, params: tuple = ()) -> list[tuple]:
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        rows = [tuple(r) for r in cur.fetchall()]
        conn.rollback()
        return rows


def wait_for_drain(db: Database, prefix: str, timeout_s: float) -> int:
    """Wait until no inbox row of the run is pending or in progress; returns how many still are."""
    deadline = time.monotonic() + timeout_s
    while True:
        (waiting,), = _rows(db, "SELECT COUNT(*) FROM MensajesProcesados WHERE MensajeId LIKE ? "
                                "AND Estado IN ('PENDIENTE', 'PROCESANDO')", (prefix,))
        if waiting == 0 or time.monotonic() > deadline:
            return int(waiting)
        time.sleep(0.25)


def count_events(telemetry_path: str | None, event_name: str) -> int | None:
    if not telemetry_path:
        return None
    count = 0
    try:
        with open(telemetry_path, encoding="utf-8") as fh:
            for line in fh:
                if f'"{event_name}"' in line and json.loads(line)["customDimensions"].get("event_name") == event_name:
                    count += 1
    except OSError:
        return None
    return count


def verify_run(db: Database, plan: list[Delivery], run_id: str, drain_timeout_s: float = 60.0,
               telemetry_path: str | None = None) -> dict[str, Any]:
    prefix = f"wamid.LT{run_id}.%"
    wait_for_drain(db, prefix, drain_timeout_s)
    sent = {d.wamid for d in plan if d.attempts}
    acked = {d.wamid for d in plan if d.acked}
    inbox = dict(_rows(db, "SELECT MensajeId, Estado FROM MensajesProcesados WHERE MensajeId LIKE ?", (prefix,)))
    lost = sorted(acked - set(inbox))
    unexpected = sorted(set(inbox) - sent)
    unprocessed = sorted(m for m, state in inbox.items() if state != "PROCESADO")
    acted = _rows(db, "SELECT MensajeId, COUNT(*) FROM MensajesChat WHERE Tipo = 'U' AND MensajeId LIKE ? "
                      "GROUP BY MensajeId", (prefix,))
    acted_twice = sorted(m for m, n in acted if n > 1)
    by_conversation: dict[int, dict[int, Delivery]] = {}
    for d in plan:
        if d.conversation is not None and not d.duplicate:
            by_conversation.setdefault(d.conversation, {})[d.step] = d
    # A conversation is confirmed when the confirmation was sent after the first
    # message was acknowledged (inline mode acknowledges after processing): it
    # must have exactly one report. Both acknowledged but sent out of order: at
    # most one (the bot may have seen them in either order).
    both = [steps for steps in by_conversation.values()
            if 0 in steps and 1 in steps and steps[0].acked and steps[1].acked]
    confirmed = sum(1 for steps in both if steps[0].acked_at is not None and steps[1].sent_at is not None
                    and steps[1].sent_at >= steps[0].acked_at)
    reports = _rows(db, "SELECT MensajeOrigenId, Telefono FROM Reportes WHERE MensajeOrigenId LIKE ?", (prefix,))
    phones = [t for _, t in reports]
    duplicate_reports = (len(phones) - len(set(phones))) + (len(reports) - len({m for m, _ in reports}))
    duplicate_replies = len(_rows(
        db, "SELECT MensajeOrigenId, Secuencia FROM MensajesSalientes WHERE MensajeOrigenId LIKE ? "
            "GROUP BY MensajeOrigenId, Secuencia HAVING COUNT(*) > 1", (prefix,)))
    answered = {m for (m,) in _rows(db, "SELECT DISTINCT MensajeOrigenId FROM MensajesSalientes "
                                        "WHERE MensajeOrigenId LIKE ?", (prefix,))}
    replies_lost = sorted(m for m, state in inbox.items() if state == "PROCESADO" and m not in answered)
    sender = {d.wamid: d.telefono for d in plan}
    recipients = _rows(db, "SELECT MensajeOrigenId, Telefono FROM MensajesSalientes WHERE MensajeOrigenId LIKE ?",
                       (prefix,))
    misaddressed = sorted({m for m, to in recipients if m in sender and to != sender[m]})
    bsuid_users = {d.telefono for d in plan if not d.telefono.isdigit()}
    violations = []
    if lost:
        violations.append(f"{len(lost)} acknowledged deliveries have no inbox row (e.g. {lost[0]})")
    if unexpected:
        violations.append(f"{len(unexpected)} inbox rows for ids never sent (e.g. {unexpected[0]})")
    if unprocessed:
        violations.append(f"{len(unprocessed)} inbox rows not processed after the drain (e.g. {unprocessed[0]})")
    if acted_twice:
        violations.append(f"{len(acted_twice)} messages acted on more than once (e.g. {acted_twice[0]})")
    if duplicate_reports:
        violations.append(f"{duplicate_reports} duplicate reports")
    # How far the report count falls outside [confirmed, both acknowledged] (duplicates are counted above).
    reports_off = 0 if duplicate_reports else max(confirmed - len(reports), len(reports) - len(both), 0)
    if reports_off:
        violations.append(f"{len(reports)} reports for {confirmed} confirmed conversations "
                          f"({len(both)} with both messages acknowledged)")
    if duplicate_replies:
        violations.append(f"{duplicate_replies} (message, sequence) replies written more than once")
    if replies_lost:
        violations.append(f"{len(replies_lost)} processed messages without replies (e.g. {replies_lost[0]})")
    if misaddressed:
        violations.append(f"{len(misaddressed)} messages answered to someone other than their sender "
                          f"(e.g. {misaddressed[0]})")
    return {
        "ok": not violations, "violations": violations,
        "inbox_rows": len(inbox), "distinct_ids_sent": len(sent), "distinct_ids_acked": len(acked),
        "lost": len(lost), "unexpected": len(unexpected), "unprocessed": len(unprocessed),
        "duplicates": len(acted_twice), "reports": len(reports), "confirmed_conversations": confirmed,
        "duplicate_reports": duplicate_reports, "reports_off": reports_off, "duplicate_replies": duplicate_replies,
        "replies_lost": len(replies_lost), "misaddressed": len(misaddressed),
        "bsuid_users": len(bsuid_users), "bsuid_reports": sum(1 for _, t in reports if t in bsuid_users),
        "concurrency_retries": count_events(telemetry_path, "concurrency.retry"),
    }


def equipment_missing(db: Database, codigo_sap: str) -> bool:
    """Whether the database lacks the active Equipo the load's conversations report on."""
    rows = _rows(db, "SELECT Activo FROM Equipos WHERE CodigoSAP = ?", (codigo_sap,))
    return not any(str(active).lower() in ("1", "true") for (active,) in rows)
