"""The smoke test after a deploy: a few signed deliveries from the test identity, checked end to end.

``run_smoke`` sends ``count`` text messages, signed like Meta signs them, from the phone the
bot knows as its smoke identity (``smoke.phone``: the server answers it through the sender as
usual, files no report for it and marks its telemetry synthetic, so the metrics leave it out).
Each delivery must be acknowledged (HTTP 200, counted as received). With a database, each
message must also be recorded exactly once, processed, and answered: at least one reply row
that the sender accepted (ENVIADO, ENTREGADO or LEIDO), within the timeout.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot_core.storage import Database
from bot_core.webhook import meta

SMOKE_TEXT = "hola"
ANSWERED = ("ENVIADO", "ENTREGADO", "LEIDO")


@dataclass
class SmokeCheck:
    message_id: str
    acknowledged: bool = False
    http_status: int | None = None
    recorded: int | None = None  # inbox rows with this id (None: not checked)
    processed: bool | None = None
    answered: bool | None = None

    @property
    def ok(self) -> bool:
        return self.acknowledged and self.recorded in (None, 1) and self.processed is not False \
            and self.answered is not False


@dataclass
class SmokeResult:
    url: str
    run_id: str
    checks: list[SmokeCheck] = field(default_factory=list)
    database_checked: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def summary(self) -> dict[str, Any]:
        def count(predicate) -> int:
            return sum(1 for c in self.checks if predicate(c))

        out: dict[str, Any] = {"url": self.url, "run_id": self.run_id, "sent": len(self.checks),
                               "acknowledged": count(lambda c: c.acknowledged), "ok": self.ok}
        if self.database_checked:
            out.update(recorded_once=count(lambda c: c.recorded == 1), processed=count(lambda c: c.processed),
                       answered=count(lambda c: c.answered))
        out["failures"] = [{"message_id": c.message_id, "http_status": c.http_status, "recorded": c.recorded,
                            "processed": c.processed, "answered": c.answered} for c in self.checks if not c.ok]
        return out


def run_smoke(url: str, app_secret: str, phone: str, count: int = 10, db: Database | None = None,
              timeout_s: float = 30.0, client: httpx.Client | None = None) -> SmokeResult:
    run_id = uuid.uuid4().hex[:10].upper()
    result = SmokeResult(url, run_id)
    http = client or httpx.Client(timeout=min(timeout_s, 15.0))
    try:
        for i in range(count):
            check = SmokeCheck(f"wamid.SMOKE.{run_id}.{i}")
            body, headers = meta.signed_body(meta.envelope([meta.text_message(phone, SMOKE_TEXT,
                                                                              wamid=check.message_id)]), app_secret)
            try:
                response = http.post(url, content=body, headers=headers)
                check.http_status = response.status_code
                check.acknowledged = response.status_code == 200 and _received(response) == 1
            except httpx.HTTPError:
                check.acknowledged = False
            result.checks.append(check)
    finally:
        if client is None:
            http.close()
    if db is not None:
        result.database_checked = True
        _check_database(db, result.checks, timeout_s)
    return result


def _received(response: httpx.Response) -> int | None:
    try:
        return int(response.json().get("received"))
    except (ValueError, TypeError, AttributeError):
        return None


def _check_database(db: Database, checks: list[SmokeCheck], timeout_s: float) -> None:
    """Wait (up to the timeout) until every message is processed and answered, then record what is."""
    deadline = time.monotonic() + timeout_s
    ids = [c.message_id for c in checks]
    marks = ", ".join("?" for _ in ids)
    while True:
        with db.connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT MensajeId, COUNT(*), MAX(Estado) FROM MensajesProcesados "
                        f"WHERE MensajeId IN ({marks}) GROUP BY MensajeId", ids)
            inbox = {row[0]: (int(row[1]), row[2]) for row in cur.fetchall()}
            states = ", ".join("?" for _ in ANSWERED)
            cur.execute(f"SELECT DISTINCT MensajeOrigenId FROM MensajesSalientes WHERE MensajeOrigenId IN ({marks}) "
                        f"AND Estado IN ({states})", [*ids, *ANSWERED])
            answered = {row[0] for row in cur.fetchall()}
            conn.rollback()
        for check in checks:
            rows, state = inbox.get(check.message_id, (0, None))
            check.recorded, check.processed = rows, state == "PROCESADO"
            check.answered = check.message_id in answered
        if all(c.ok for c in checks) or time.monotonic() >= deadline:
            return
        time.sleep(0.25)
