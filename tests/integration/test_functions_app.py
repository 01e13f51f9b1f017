"""deploy/azure-functions/function_app.py as the Functions worker runs it: no background loops.

The module is imported the way the worker indexes it (settings from the environment), its
HTTP function is driven through the real AsgiFunctionApp/AsgiMiddleware, and its timer
function is called with a TimerRequest. Replies go to a fake Graph API on loopback.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time

import pytest

from bot_core.sqltime import from_db, utcnow
from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.conftest import ROOT
from tests.support.fake_http import FakeGraph

func = pytest.importorskip("azure.functions", reason="azure-functions (the azure extra) is not installed")
from azure.functions.meta import Datum  # noqa: E402
from azure.functions.timer import TimerRequestConverter  # noqa: E402
SECRET = "functions-app-secret-0123456789"
LOOPS = {"outbox-dispatcher", "inbox-sweeper", "sqlite-checkpoint", "pending-work-lookout"}
ALICE, BOB = "5215550001111", "5215550002222"


def load_function_app(tmp_path, monkeypatch, graph_url: str, db_url: str, **env: str):
    monkeypatch.chdir(tmp_path)  # no stray botctl.yaml
    settings = {"BOTCTL_DB": db_url, "BOTCTL_APP_SECRET": SECRET, "BOTCTL_VERIFY_TOKEN": "verify-token-xyz",
                "BOTCTL_HASH_KEY": "0123456789abcdef0123456789abcdef",
                "BOTCTL_WHATSAPP_TOKEN": "graph-token", "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                "BOTCTL_WHATSAPP_BASE_URL": graph_url, "BOTCTL_TELEMETRY_FILE": str(tmp_path / "t.jsonl"), **env}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"function_app_{id(tmp_path)}",
                                                  ROOT / "deploy" / "azure-functions" / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timer_request(past_due: bool = False):
    """The TimerRequest the worker builds from the host's timer binding data."""
    data = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
            "ScheduleStatus": {"Last": "0001-01-01T00:00:00", "Next": "2026-12-02T20:00:30+00:00"}}
    return TimerRequestConverter.decode(Datum(json.dumps(data), "json"), trigger_metadata={})


def shut_down(module, loop) -> None:
    """What the worker does when the app goes away: the ASGI lifespan's shutdown."""
    if module.app.startup_task_done:
        loop.run_until_complete(module.app.middleware.notify_shutdown())
        module.app.startup_task_done = False
    else:
        loop.run_until_complete(module.webhook.state.bot.stop())


def functions_of(module) -> dict:
    return {f.get_function_name(): f for f in module.app.get_functions()}


def outbox_rows(db, telefono: str) -> list[tuple]:
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado, WamidSaliente, Intentos, ProximoIntento FROM MensajesSalientes "
                    "WHERE Telefono = ? ORDER BY SalienteId", (telefono,))
        return [tuple(r) for r in cur.fetchall()]


def test_a_request_sends_its_replies_and_the_timer_retries_a_failed_send(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'functions.db'}"
    db = open_database(db_url)
    MigrationRunner(db).up()
    # Bob's first send fails with a retryable Meta error; everything else goes through.
    bob_attempts: list[dict] = []

    def answer(body: dict):
        if body["to"] != BOB:
            return "ok"
        bob_attempts.append(body)
        return 131000 if len(bob_attempts) == 1 else "ok"

    with FakeGraph(default=answer) as graph:
        module = load_function_app(tmp_path, monkeypatch, graph.url, db_url)
        functions = functions_of(module)
        assert set(functions) == {"http_app_func", "outbox_and_sweep"}
        http = functions["http_app_func"].get_user_function()
        timer = functions["outbox_and_sweep"].get_user_function()
        trigger = functions["outbox_and_sweep"].get_trigger()
        assert trigger.schedule == "*/30 * * * * *"  # the default: every 30 s

        async def post(telefono: str, text: str, wamid: str):
            body, headers = meta.signed_body(meta.envelope([meta.text_message(telefono, text, wamid=wamid)]),
                                             SECRET)
            response = await http(func.HttpRequest("POST", "http://localhost/webhook", headers=headers, body=body),
                                  None)
            # What the worker had received from the Graph API when the response was ready.
            return response, len(graph.requests)

        async def scenario():
            alice, sent_by_then = await post(ALICE, "hola", "wamid.FA1")
            running = {t.get_name() for t in asyncio.all_tasks()}
            bob, _ = await post(BOB, "hola", "wamid.FB1")
            return alice, sent_by_then, running, bob

        loop = asyncio.new_event_loop()
        try:
            alice, sent_by_then, running, bob = loop.run_until_complete(scenario())
            assert alice.status_code == 200 and json.loads(alice.get_body())["received"] == 1
            assert not running & LOOPS and module.webhook.state.bot._tasks == []
            # Alice's reply went out within her request, and the outbox row records it.
            assert sent_by_then >= 1 and all(r["json"]["to"] == ALICE for r in graph.requests[:sent_by_then])
            assert [r[0] for r in outbox_rows(db, ALICE)] == ["ENVIADO"] * sent_by_then
            assert all(r[1].startswith("wamid.OUT") for r in outbox_rows(db, ALICE))
            # Bob's send failed: left in the outbox for a retry, no loop will pick it up.
            assert bob.status_code == 200
            (state, wamid, attempts, retry_at), *rest = outbox_rows(db, BOB)
            assert (state, wamid, attempts) == ("PENDIENTE", None, 1)
            # Wait (without any loop running) until the retry is due, then the timer fires.
            due = from_db(retry_at)
            while utcnow() < due:
                time.sleep(0.05)
            sent_before = len(graph.requests)
            loop.run_until_complete(timer(timer_request()))
            rows = outbox_rows(db, BOB)
            assert [r[0] for r in rows] == ["ENVIADO"] * len(rows) and rows[0][2] == 2
            assert [r["json"]["to"] for r in graph.requests[sent_before:]] == [BOB] * len(rows)
            # A second round finds nothing to do and sends nothing again.
            loop.run_until_complete(timer(timer_request(past_due=True)))
            assert len(graph.requests) == sent_before + len(rows)
        finally:
            shut_down(module, loop)
            loop.close()


def test_the_timer_takes_over_a_message_whose_processing_never_finished(tmp_path, monkeypatch):
    """A message recorded but left unprocessed (the instance froze or died) is processed and
    answered by the next timer round after its lease expired."""
    db_url = f"sqlite:///{tmp_path / 'functions.db'}"
    db = open_database(db_url)
    MigrationRunner(db).up()
    with FakeGraph() as graph:
        module = load_function_app(tmp_path, monkeypatch, graph.url, db_url, BOTCTL_LEASE_SECONDS="1",
                                   BOTCTL_TIMER_SCHEDULE="0 */5 * * * *")
        functions = functions_of(module)  # indexed once, as the worker does
        assert functions["outbox_and_sweep"].get_trigger().schedule == "0 */5 * * * *"
        message = meta.text_message(ALICE, "hola", wamid="wamid.FROZEN")
        from bot_core.inbox import register_inbound
        from bot_core.webhook.payload import decode_webhook

        inbound = decode_webhook(meta.envelope([message])).messages[0]
        now = utcnow()
        # Recorded by a worker that was frozen before it committed: PROCESANDO, lease running.
        with db.connection() as conn:
            with db.transaction(conn) as cur:
                register_inbound(cur, "sqlite", inbound, now, now)
        timer = functions["outbox_and_sweep"].get_user_function()
        loop = asyncio.new_event_loop()
        try:
            while utcnow() <= now:
                time.sleep(0.01)
            loop.run_until_complete(timer(timer_request()))
        finally:
            shut_down(module, loop)
            loop.close()
        with db.connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT Estado FROM MensajesProcesados WHERE MensajeId = 'wamid.FROZEN'")
            assert cur.fetchone()[0] == "PROCESADO"
        rows = outbox_rows(db, ALICE)
        assert rows and [r[0] for r in rows] == ["ENVIADO"] * len(rows)
        assert len(graph.requests) == len(rows)


def test_the_function_app_imports_nothing_of_the_cli(tmp_path):
    """A cold start pays for every module imported: the CLI's libraries stay out of it.

    Typer brings click, rich and pygments, which httpx would import for its own command-line
    client (about 40 ms); function_app.py keeps that import from happening.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    env.update({"BOTCTL_DB": f"sqlite:///{tmp_path / 'f.db'}", "BOTCTL_APP_SECRET": SECRET,
                "BOTCTL_VERIFY_TOKEN": "verify-token-xyz", "BOTCTL_HASH_KEY": "0123456789abcdef0123456789abcdef",
                "BOTCTL_WHATSAPP_TOKEN": "graph-token", "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                "BOTCTL_TELEMETRY_FILE": str(tmp_path / "t.jsonl"), "PYTHONPATH": str(ROOT)})
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    probe = ("import importlib.util, sys\n"
             "spec = importlib.util.spec_from_file_location('function_app', sys.argv[1])\n"
             "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
             "import httpx\n"
             "assert 'httpx' in sys.modules\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'click', 'rich', 'pygments', 'typer', 'uvicorn', 'duckdb', 'yaml', 'hdrh', 'cli', 'migrations', 'ops', 'kql'}))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "deploy" / "azure-functions" / "function_app.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
