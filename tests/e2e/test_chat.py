"""`botctl chat` as a user would run it: a scripted conversation ending in a ticket."""

from __future__ import annotations

import re

import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from tests.conftest import botctl
from tests.e2e.servers import APP_SECRET, BotServer

pytestmark = [pytest.mark.e2e]


def _db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    MigrationRunner(open_database(url)).up()
    seed_demo_equipment(open_database(url))
    return url


def test_scripted_chat_with_an_in_process_server_reports_a_refrigerator(tmp_path):
    url = _db(tmp_path)
    script = tmp_path / "conversation.txt"
    script.write_text("hola\n1\n4001234\nno enfría y hace ruido\n1\n")
    r = botctl("chat", "--db", url, "--script", str(script), "--phone", "5215550004321", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("tú:") == 5 and "bot:" in r.stdout
    assert re.search(r"REF-\d{8}-[0-9A-F]{8}", r.stdout), r.stdout
    assert "5215550004321" not in r.stdout + r.stderr  # the user's number is never printed
    db = open_database(url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*), MIN(Descripcion) FROM Reportes")
        count, descripcion = cur.fetchone()
    assert count == 1 and "no enfría y hace ruido" in descripcion


def test_chat_against_a_running_server(tmp_path):
    url = _db(tmp_path)
    with BotServer(url, tmp_path) as server:
        script = tmp_path / "s.txt"
        script.write_text("estado REF-20260101-DEADBEEF\n")
        r = botctl("chat", "--url", server.url + "/webhook", "--db", url, "--script", str(script), "-q",
                   env={"BOTCTL_APP_SECRET": APP_SECRET}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "REF-20260101-DEADBEEF" in r.stdout


def test_chat_rejects_a_bad_phone_and_a_missing_script(tmp_path):
    url = _db(tmp_path)
    r = botctl("chat", "--db", url, "--phone", "abc")
    assert r.returncode == 2 and "--phone" in r.stderr
    r = botctl("chat", "--db", url, "--script", str(tmp_path / "nope.txt"))
    assert r.returncode == 2 and "cannot read --script" in r.stderr
