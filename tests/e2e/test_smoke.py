"""`botctl smoke` against a running `botctl serve` that knows the smoke identity."""

from __future__ import annotations

import json

import httpx
import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.conftest import botctl
from tests.e2e.servers import APP_SECRET, BotServer
from tests.support.fake_http import FakeGraph

pytestmark = [pytest.mark.e2e]
SMOKE, PERSON = "5210000000099", "5215550001212"


def scalar(url: str, sql: str, *params):
    with open_database(url).connection() as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchone()[0]


def post(server: BotServer, message: dict) -> int:
    body, headers = meta.signed_body(meta.envelope([message]), APP_SECRET)
    return httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=10).status_code


def test_smoke_is_answered_through_the_sender_and_kept_out_of_reports_and_metrics(tmp_path):
    url = f"sqlite:///{tmp_path / 'smoke.db'}"
    MigrationRunner(open_database(url)).up()
    seed_demo_equipment(open_database(url))
    env = {"BOTCTL_APP_SECRET": APP_SECRET}
    with FakeGraph() as graph, BotServer(url, tmp_path, env={
            "BOTCTL_SMOKE_PHONE": SMOKE, "BOTCTL_WHATSAPP_TOKEN": "t", "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1",
            "BOTCTL_WHATSAPP_BASE_URL": graph.url}) as server:
        r = botctl("smoke", "--url", server.url + "/webhook", "--count", "5", "--phone", SMOKE, "--db", url,
                   "-o", "json", env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert (result["sent"], result["acknowledged"], result["recorded_once"], result["answered"]) == (5, 5, 5, 5)
        assert result["ok"] is True and "5/5 acknowledged" in r.stderr
        # Answered through the Graph API sender, to the smoke identity.
        assert sum(1 for q in graph.requests if q["json"]["to"] == SMOKE) >= 5
        # The whole report conversation from the smoke identity files no report; a person's does.
        for phone in (SMOKE, PERSON):
            assert post(server, meta.text_message(phone, "mi refri 4001234 no enfría", wamid=f"wamid.R{phone}")) == 200
            assert post(server, meta.reply_message(phone, "confirmar", "Confirmar", wamid=f"wamid.C{phone}")) == 200
        # The wrong secret: acknowledged by nobody, exit 1 (the server is there: not a usage error).
        bad = botctl("smoke", "--url", server.url + "/webhook", "--count", "2", "--phone", SMOKE,
                     env={"BOTCTL_APP_SECRET": "not-the-secret"}, cwd=tmp_path)
        assert bad.returncode == 1 and "0/2 acknowledged" in bad.stderr and "Traceback" not in bad.stderr
    assert scalar(url, "SELECT COUNT(*) FROM Reportes WHERE Telefono = ?", SMOKE) == 0
    assert scalar(url, "SELECT COUNT(*) FROM Reportes WHERE Telefono = ?", PERSON) == 1
    rows = [json.loads(line) for line in server.telemetry.read_text().splitlines()]
    requests = [row for row in rows if row["customDimensions"].get("event_name") == "webhook.request"
                and row["customDimensions"].get("resultCode") == "200"]
    synthetic = [row for row in requests if row["customDimensions"].get("synthetic") == "1"]
    assert len(synthetic) == 7 and len(requests) - len(synthetic) == 2  # 5 smoke + 2 of its conversation
    # The stored metrics leave the smoke deliveries out: only the person's two requests count.
    m = botctl("metrics", "error_rate", "--file", str(server.telemetry), "--since", "1h", "-o", "json",
               cwd=tmp_path)
    assert m.returncode == 0, m.stderr
    counted = sum(row["requests"] for q in json.loads(m.stdout)["queries"] for row in q["rows"])
    assert counted == 2 + 2  # the person's two, and the two rejected by the wrong secret (403)


def test_smoke_without_an_identity_or_a_server_is_a_usage_error(tmp_path):
    r = botctl("smoke", "--url", "http://127.0.0.1:9/webhook", cwd=tmp_path)
    assert r.returncode == 2 and "smoke identity" in r.stderr
    r = botctl("smoke", "--url", "http://127.0.0.1:9/webhook", "--phone", SMOKE, cwd=tmp_path)
    assert r.returncode == 2 and "no server at" in r.stderr
    r = botctl("smoke", "--url", "ftp://x/webhook", "--phone", SMOKE, cwd=tmp_path)
    assert r.returncode == 2 and "--url" in r.stderr
