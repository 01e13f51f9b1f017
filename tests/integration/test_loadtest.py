"""The load generator: open-model scheduling, redelivery, thresholds and DB verification."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from ops.loadtest.runner import LoadGenerator, LoadtestOptions
from ops.loadtest.thresholds import parse_threshold
from ops.loadtest.traffic import Delivery, TrafficSpec, build_plan
from ops.loadtest.verify import verify_run
from bot_core.errors import ConfigError
from tests.conftest import botctl
from tests.e2e.servers import APP_SECRET, BotServer, free_port


class StallingServer:
    """A raw asyncio HTTP server that answers 200, except that it stalls every
    answer for ``stall_s`` while the stall window is open; it records arrivals."""

    def __init__(self, stall_from: float, stall_s: float, fail_first: int = 0):
        self.port = free_port()
        self.arrivals: list[float] = []
        self.stall_from, self.stall_s, self.fail_first = stall_from, stall_s, fail_first
        self.t0 = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b""):
                        break
                    if header.lower().startswith(b"content-length"):
                        length = int(header.split(b":")[1])
                await reader.readexactly(length)
                now = time.monotonic()
                self.t0 = self.t0 or now
                self.arrivals.append(now - self.t0)
                elapsed = now - self.t0
                if self.stall_from <= elapsed < self.stall_from + self.stall_s:
                    await asyncio.sleep(self.stall_from + self.stall_s - elapsed)
                status = b"503 Service Unavailable" if len(self.arrivals) <= self.fail_first else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def run(url: str, spec: TrafficSpec, **kwargs) -> tuple[dict, list[Delivery]]:
    generator = LoadGenerator(LoadtestOptions(url, APP_SECRET, spec, **kwargs))
    summary = asyncio.run(generator.run())
    return summary, generator.plan


def test_the_send_rate_holds_while_the_server_stalls_and_latency_shows_it():
    with StallingServer(stall_from=1.0, stall_s=2.0) as server:
        spec = TrafficSpec(rate=100, duration_s=4.0, gap_s=0.2)
        summary, _ = run(f"http://127.0.0.1:{server.port}/webhook", spec)
    per_second = [sum(1 for a in server.arrivals if s <= a < s + 1) for s in range(4)]
    # Every second, stalled or not, receives its ~100 requests: nothing waits for earlier answers.
    assert all(85 <= n <= 115 for n in per_second), per_second
    assert summary["dropped"] == 0 and summary["errors"] == 0
    # Measured from the due time, the stall is in the latency (about 2 s at the worst).
    assert summary["latency_ms"]["max"] >= 1500
    assert summary["latency_ms"]["p50"] < summary["latency_ms"]["p99"]


def test_5xx_deliveries_are_redelivered_until_they_succeed():
    with StallingServer(stall_from=99, stall_s=0, fail_first=5) as server:
        spec = TrafficSpec(rate=20, duration_s=1.0, gap_s=0.1)
        summary, plan = run(f"http://127.0.0.1:{server.port}/webhook", spec, redelivery_base_s=0.05)
    assert summary["counts_by_status"]["503"] == 5
    assert summary["redeliveries"] == 5 and summary["errors"] == 0
    assert all(d.acked for d in plan)


def test_thresholds_parse_and_evaluate():
    assert parse_threshold("p(95)<2000").percentile == 95
    assert parse_threshold(" errors == 0 ").metric == "errors"
    for bad in ("p(95)<<3", "p(0)<1", "latency<3", "errors=0"):
        with pytest.raises(ConfigError):
            parse_threshold(bad)
    metrics = {"errors": 0, "rate": 49.0}
    assert parse_threshold("errors==0").evaluate(metrics, lambda p: None)["passed"]
    assert not parse_threshold("rate>=50").evaluate(metrics, lambda p: None)["passed"]
    assert parse_threshold("p(99)<100").evaluate(metrics, lambda p: 80.0) == \
        {"expression": "p(99)<100", "passed": True, "actual": 80.0}


def test_plan_has_conversations_duplicates_and_a_burst():
    spec = TrafficSpec(rate=50, duration_s=2, dup_ratio=0.2, burst=10, burst_mode="same-id", seed=3)
    plan = build_plan(spec, APP_SECRET)
    firsts = [d for d in plan if d.step == 0 and not d.duplicate and not d.burst]
    confirms = [d for d in plan if d.step == 1 and not d.duplicate]
    assert confirms and all(c.predecessor is not None and c.predecessor.telefono == c.telefono
                            and c.due - c.predecessor.due >= 0.9 for c in confirms)
    dups = [d for d in plan if d.duplicate and not d.burst]
    assert 0.1 < len(dups) / (len(firsts) + len(confirms)) < 0.3
    burst = [d for d in plan if d.burst]
    assert len(burst) == 10 and len({d.wamid for d in burst}) == 1 and len({d.due for d in burst}) == 1
    assert [d.due for d in plan] == sorted(d.due for d in plan)


def test_a_share_of_conversations_comes_from_users_without_a_phone():
    from bot_core.identity import is_bsuid
    from bot_core.webhook.payload import decode_webhook

    plan = build_plan(TrafficSpec(rate=100, duration_s=2, bsuid_share=0.25, seed=3), APP_SECRET)
    users = {d.telefono for d in plan}
    share = sum(1 for u in users if is_bsuid(u)) / len(users)
    assert 0.15 < share < 0.35 and all(is_bsuid(u) or u.isdigit() for u in users)
    bsuid_delivery = next(d for d in plan if not d.telefono.isdigit())
    (message,) = decode_webhook(json.loads(bsuid_delivery.body)).messages
    assert (message.telefono, message.user_id) == (None, bsuid_delivery.telefono)
    assert build_plan(TrafficSpec(rate=100, duration_s=2, seed=3), APP_SECRET)[0].telefono.isdigit()


@pytest.fixture
def verified_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = open_database(url)
    MigrationRunner(db).up()
    return url, db


def _run_against_serve(url: str, workdir) -> tuple[dict, list[Delivery], str]:
    from bot_core.demo import seed_demo_equipment

    seed_demo_equipment(open_database(url))
    with BotServer(url, workdir) as server:
        spec = TrafficSpec(rate=40, duration_s=2.0, gap_s=0.3, dup_ratio=0.2, burst=20, bsuid_share=0.3)
        summary, plan = run(server.url + "/webhook", spec)
    return summary, plan, spec.run_id


def test_verify_passes_on_a_real_run_and_catches_each_planted_violation(verified_db, tmp_path):
    url, db = verified_db
    summary, plan, run_id = _run_against_serve(url, tmp_path)
    assert summary["errors"] == 0
    result = verify_run(db, plan, run_id, drain_timeout_s=20)
    assert result["ok"], result["violations"]
    assert result["reports"] >= result["confirmed_conversations"] > 0
    assert result["inbox_rows"] == result["distinct_ids_sent"]
    assert result["bsuid_users"] > 0 and result["bsuid_reports"] > 0 and result["misaddressed"] == 0
    prefix = f"wamid.LT{run_id}."

    def execute(sql, params=()):
        with db.connection() as conn:
            with db.transaction(conn) as cur:
                cur.execute(sql, params)

    # 1. an unprocessed inbox row
    execute("UPDATE MensajesProcesados SET Estado = 'PENDIENTE' WHERE MensajeId = ?", (prefix + "0.0",))
    bad = verify_run(db, plan, run_id, drain_timeout_s=0.5)
    assert bad["unprocessed"] == 1 and any("not processed" in v for v in bad["violations"])
    execute("UPDATE MensajesProcesados SET Estado = 'PROCESADO' WHERE MensajeId = ?", (prefix + "0.0",))
    # 2. a duplicate report: a second report for a conversation that already has one
    execute("INSERT INTO Reportes (NumeroTicket, Telefono, TipoReporte, Estado, MensajeOrigenId) "
            "SELECT 'DUP-1', Telefono, TipoReporte, 'PENDIENTE', ? FROM Reportes WHERE MensajeOrigenId LIKE ? "
            "LIMIT 1", (prefix + "dup", prefix + "%"))
    bad = verify_run(db, plan, run_id, drain_timeout_s=0.5)
    assert bad["duplicate_reports"] == 1 and not bad["ok"]
    execute("DELETE FROM Reportes WHERE NumeroTicket = 'DUP-1'")
    # 3. a reply to someone other than the sender (a BSUID user's reply sent to a phone)
    bsuid_first = next(d.wamid for d in plan if d.step == 0 and not d.burst and not d.telefono.isdigit())
    execute("UPDATE MensajesSalientes SET Telefono = '5215550000000' WHERE MensajeOrigenId = ?", (bsuid_first,))
    bad = verify_run(db, plan, run_id, drain_timeout_s=0.5)
    assert bad["misaddressed"] == 1 and any("other than their sender" in v for v in bad["violations"])
    execute("UPDATE MensajesSalientes SET Telefono = ? WHERE MensajeOrigenId = ?",
            (next(d.telefono for d in plan if d.wamid == bsuid_first), bsuid_first))
    # 4. a duplicate reply: the schema forbids it, so plant it where that guard is gone
    execute("ALTER TABLE MensajesSalientes RENAME TO MensajesSalientesOld")
    execute("CREATE TABLE MensajesSalientes AS SELECT * FROM MensajesSalientesOld")
    execute("INSERT INTO MensajesSalientes SELECT * FROM MensajesSalientesOld WHERE MensajeOrigenId = ?",
            (prefix + "0.0",))
    bad = verify_run(db, plan, run_id, drain_timeout_s=0.5)
    assert bad["duplicate_replies"] >= 1 and any("more than once" in v for v in bad["violations"])


def test_loadtest_cli_writes_a_summary_and_exits_by_thresholds(verified_db, tmp_path):
    from bot_core.demo import seed_demo_equipment

    url, db = verified_db
    seed_demo_equipment(db)  # the traffic reports on the demo refrigerator 4001234
    with BotServer(url, tmp_path) as server:
        summary_path = tmp_path / "summary.json"
        env = {"BOTCTL_APP_SECRET": APP_SECRET}
        ok = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "30", "--duration", "2",
                    "--burst", "10", "--threshold", "p(95)<2000", "--threshold", "errors==0", "--verify",
                    "--db", url, "--summary", str(summary_path), "-q", env=env)
        assert ok.returncode == 0, ok.stderr
        summary = json.loads(summary_path.read_text())
        assert summary["verify"]["ok"] and summary["burst"]["size"] == 10
        assert {t["expression"] for t in summary["thresholds"]} == {"p(95)<2000", "errors==0"}
        assert summary["rate_achieved"] > 25
        breached = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "20", "--duration", "1",
                          "--threshold", "p(50)<0.001", "-q", env=env)
        assert breached.returncode == 1 and "failed: p(50)<0.001" in breached.stderr
    usage = botctl("loadtest", "--url", "ftp://x", "--rate", "5", "--duration", "1")
    assert usage.returncode == 2 and "--url must be an http://" in usage.stderr
    usage = botctl("loadtest", "--url", "http://127.0.0.1:1/webhook", "--threshold", "p95<3")
    assert usage.returncode == 2 and "invalid threshold" in usage.stderr
