"""`botctl chat` as a user would run it: a scripted conversation ending in a ticket."""

from __future__ import annotations

import re

import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from tests.conftest import botctl
from tests.e2e.servers import APP_SECRET, BotServer
from tests.support.fake_http import free_port

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


def test_chat_against_a_running_server_never_reads_its_database(tmp_path):
    """The server on its own --db elsewhere; chat from an empty directory gets the replies through
    its Graph API stand-in and leaves nothing behind."""
    url = _db(tmp_path)
    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with BotServer(url, tmp_path, env={"BOTCTL_WHATSAPP_BASE_URL": f"http://127.0.0.1:{port}"}) as server:
        script = tmp_path / "s.txt"
        script.write_text("hola\n1\n")
        r = botctl("chat", "--url", server.url + "/webhook", "--listen", f"127.0.0.1:{port}",
                   "--script", str(script), env={"BOTCTL_APP_SECRET": APP_SECRET}, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "Elige una opción" in r.stdout and "Vamos a reportar una falla de *refrigerador*" in r.stdout
    assert list(elsewhere.iterdir()) == []  # no stray botctl.db, no lock file
    assert "Traceback" not in r.stderr


def test_chat_against_a_dead_server_is_one_line_exit_2(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("hola\n")
    r = botctl("chat", "--url", f"http://127.0.0.1:{free_port()}/webhook", "--listen", f"127.0.0.1:{free_port()}",
               "--script", str(script), "-q", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no server at http://127.0.0.1:" in lines[0] and "botctl serve" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and list(tmp_path.iterdir()) == [script]


def test_chat_says_where_the_server_must_send_when_no_reply_comes(tmp_path):
    """A server that does not send to the chat's stand-in: one line naming the setting to use."""
    url = _db(tmp_path)
    with BotServer(url, tmp_path) as server:
        script = tmp_path / "s.txt"
        script.write_text("hola\n")
        r = botctl("chat", "--url", server.url + "/webhook", "--listen", f"127.0.0.1:{free_port()}",
                   "--script", str(script), "-q", env={"BOTCTL_APP_SECRET": APP_SECRET}, cwd=tmp_path,
                   timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "sent no reply" in lines[0] and "--whatsapp-url http://127.0.0.1:" in lines[0]


def test_chat_with_url_refuses_a_database(tmp_path):
    r = botctl("chat", "--url", "http://127.0.0.1:1/webhook", "--db", f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--db is not used with --url" in r.stderr
    assert not (tmp_path / "x.db").exists()


def test_chat_cannot_listen_on_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = botctl("chat", "--url", "http://127.0.0.1:1/webhook", "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--listen" in r.stderr


def test_chat_rejects_a_bad_phone_and_a_missing_script(tmp_path):
    url = _db(tmp_path)
    r = botctl("chat", "--db", url, "--phone", "abc")
    assert r.returncode == 2 and "--phone" in r.stderr
    r = botctl("chat", "--db", url, "--script", str(tmp_path / "nope.txt"))
    assert r.returncode == 2 and "cannot read --script" in r.stderr
