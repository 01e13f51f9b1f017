"""Nobody gets in, nothing leaks: signatures, hostile bodies, literal round-trips, secret hygiene."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from bot_core.webhook import meta
from bot_core.webhook.signature import sign
from migrations.runner import MigrationRunner
from tests.conftest import botctl
from tests.e2e.dbcheck import scalar, wait_all_processed
from tests.e2e.servers import APP_SECRET, VERIFY_TOKEN, BotServer
from tests.support.fake_http import FakeGraph

pytestmark = [pytest.mark.e2e]
TEL = "5215550006789"
HOSTILE = ["'; DROP TABLE Reportes;--", "traces | where 1==1 | take 10; .drop table x",
           "ctrl:\x01\x02\x07\x1b[31m\t\r fin", "emoji 🚚❄️ y acentos ñáéíóú", 'comillas "dobles" y \\barras\\']


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("security")
    url = f"sqlite:///{workdir / 'sec.db'}"
    MigrationRunner(open_database(url)).up()
    seed_demo_equipment(open_database(url))
    with FakeGraph() as graph, BotServer(url, workdir, env={
            "BOTCTL_WHATSAPP_TOKEN": "EAAG-secret-token-xyz", "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1234567890",
            "BOTCTL_WHATSAPP_BASE_URL": graph.url, "BOTCTL_HASH_KEY": "hash-key-secret"}) as srv:
        srv.db_url = url
        srv.graph = graph
        yield srv


def post_raw(server, body: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    return httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=30)


def test_signature_edge_cases(server):
    raw_unicode = json.dumps(meta.envelope([meta.text_message(TEL, "¿Sigue frío? 🚚", wamid="wamid.SIG1")]),
                             ensure_ascii=False).encode()
    escaped = json.dumps(meta.envelope([meta.text_message(TEL, "¿Sigue frío? 🚚", wamid="wamid.SIG2")])).encode()
    assert b"\\u00bf" in escaped and "🚚".encode() in raw_unicode
    assert post_raw(server, raw_unicode, sign(raw_unicode, APP_SECRET)).status_code == 200
    assert post_raw(server, escaped, sign(escaped, APP_SECRET)).status_code == 200
    assert post_raw(server, escaped, None).status_code == 401
    assert post_raw(server, escaped, "sha1=" + sign(escaped, APP_SECRET)[7:]).status_code == 403
    assert post_raw(server, escaped, "sha256=" + sign(escaped, APP_SECRET)[7:].upper()).status_code == 200
    assert post_raw(server, escaped, sign(raw_unicode, APP_SECRET)).status_code == 403
    assert post_raw(server, b"", sign(b"", APP_SECRET)).status_code == 400
    assert post_raw(server, b"", None).status_code == 401


def test_replaying_an_old_signed_body_is_a_counted_duplicate(server):
    body, headers = meta.signed_body(meta.envelope([meta.text_message(TEL, "hola", wamid="wamid.REPLAY1")]),
                                     APP_SECRET)
    assert httpx.post(server.url + "/webhook", content=body, headers=headers).json()["received"] == 1
    wait_all_processed(server.db_url, scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados"))
    history = scalar(server.db_url, "SELECT COUNT(*) FROM HistorialSesiones WHERE Telefono = ?", (TEL,))
    for _ in range(3):
        replay = httpx.post(server.url + "/webhook", content=body, headers=headers).json()
        assert replay["received"] == 0 and replay["duplicates"] == 1
    assert scalar(server.db_url, "SELECT Reintentos FROM MensajesProcesados WHERE MensajeId = 'wamid.REPLAY1'") == 3
    assert scalar(server.db_url, "SELECT COUNT(*) FROM HistorialSesiones WHERE Telefono = ?", (TEL,)) == history


def test_ten_thousand_messages_in_one_body_is_a_clear_4xx(server):
    messages = [meta.text_message(f"52155{i:08d}", "hola") for i in range(10_000)]
    body, headers = meta.signed_body(meta.envelope(messages), APP_SECRET)
    before = scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados")
    started = time.monotonic()
    response = httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=30)
    assert response.status_code == 413 and "messages" in response.json()["error"]
    assert time.monotonic() - started < 5
    assert scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados") == before


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_round_trips_literally_into_history_and_reports(server, text):
    tel = f"5215551{abs(hash(text)) % 10**6:06d}"
    wamid = f"wamid.H{abs(hash(text)) % 10**9}"
    # Asked for the problem, the whole message is the description.
    steps = [meta.text_message(tel, "refri", wamid=wamid + "r"),
             meta.text_message(tel, "4001234", wamid=wamid + "s"),
             meta.text_message(tel, text, wamid=wamid + "a"),
             meta.reply_message(tel, "confirmar", "Confirmar", wamid=wamid + "b")]
    for message in steps:
        body, headers = meta.signed_body(meta.envelope([message]), APP_SECRET)
        assert httpx.post(server.url + "/webhook", content=body, headers=headers).status_code == 200
        wait_all_processed(server.db_url, scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados"))
    db = open_database(server.db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Contenido FROM MensajesChat WHERE MensajeId = ? AND Tipo = 'U'", (wamid + "a",))
        assert cur.fetchone()[0] == text
        cur.execute("SELECT Descripcion FROM Reportes WHERE MensajeOrigenId = ?", (wamid + "b",))
        assert cur.fetchone()[0] == text
        cur.execute("SELECT COUNT(*) FROM Reportes")
        assert cur.fetchone()[0] >= 1  # the table is still there


def test_serve_refuses_a_public_address_without_secrets(tmp_path):
    r = botctl("serve", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 2 and "refusing to serve on 0.0.0.0" in r.stderr
    r = botctl("serve", "--host", "10.1.2.3", "--db", f"sqlite:///{tmp_path / 'x.db'}",
               env={"BOTCTL_APP_SECRET": "only-one-of-two"})
    assert r.returncode == 2 and "BOTCTL_VERIFY_TOKEN" in r.stderr


def test_no_secret_or_raw_phone_in_anything_printed_or_logged(server, tmp_path):
    """Scan every byte the processes wrote: server log, telemetry, CLI output."""
    secrets = [APP_SECRET, VERIFY_TOKEN, "EAAG-secret-token-xyz", "hash-key-secret", "pg-password-shh"]
    # Its own traffic (it must pass alone too): six users, each answered through the Graph API.
    own = [f"5215552{n:06d}" for n in range(6)]
    for n, tel in enumerate(own):
        body, headers = meta.signed_body(meta.envelope([meta.text_message(tel, "hola", wamid=f"wamid.LEAK{n}")]),
                                         APP_SECRET)
        assert httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=30).status_code == 200
    wait_all_processed(server.db_url, scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados"))
    deadline = time.monotonic() + 30
    while server.graph.sent < len(own) and time.monotonic() < deadline:
        time.sleep(0.1)
    outputs = []
    env = {"BOTCTL_APP_SECRET": APP_SECRET, "BOTCTL_DB_PASSWORD": "pg-password-shh"}
    for args in (["migrate", "status", "--db", server.db_url], ["migrate", "validate", "--db", server.db_url],
                 ["migrate", "status", "--db", "postgresql://bot@127.0.0.1:1/x"],
                 ["metrics", "--source", "local", "--list"]):
        r = botctl(*args, env=env, cwd=tmp_path)
        outputs += [r.stdout, r.stderr]
    script = tmp_path / "s.txt"
    script.write_text("hola\n")
    r = botctl("chat", "--url", server.url + "/webhook", "--db", server.db_url, "--script", str(script),
               "--phone", TEL, env=env, cwd=tmp_path)
    outputs += [r.stdout, r.stderr]
    outputs += [server.log.read_text(errors="replace"), server.telemetry.read_text(errors="replace")]
    everything = "\n".join(outputs)
    assert len(server.telemetry.read_text()) > 1000  # there was something to scan
    for secret in secrets:
        assert secret not in everything, f"a secret leaked: {secret[:4]}…"
    db = open_database(server.db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT DISTINCT Telefono FROM MensajesProcesados")
        phones = [row[0] for row in cur.fetchall()]
    assert set(own) <= set(phones)
    assert server.graph.sent >= len(own)  # replies really went out through the Graph API sender
    leaked = [p for p in phones if p in everything]
    assert leaked == [], f"{len(leaked)} raw phone numbers appear in output or logs"


def test_a_status_for_another_recipient_moves_nothing(server):
    tel = "5215550004321"
    body, headers = meta.signed_body(meta.envelope([meta.text_message(tel, "hola", wamid="wamid.STATUS1")]),
                                     APP_SECRET)
    assert httpx.post(server.url + "/webhook", content=body, headers=headers).status_code == 200
    deadline = time.monotonic() + 30
    while not scalar(server.db_url, "SELECT COUNT(*) FROM MensajesSalientes WHERE MensajeOrigenId = "
                                    "'wamid.STATUS1' AND WamidSaliente IS NOT NULL"):
        assert time.monotonic() < deadline, "the reply was never sent"
        time.sleep(0.2)
    db = open_database(server.db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT WamidSaliente FROM MensajesSalientes WHERE MensajeOrigenId = 'wamid.STATUS1' "
                    "AND WamidSaliente IS NOT NULL")
        wamid = cur.fetchone()[0]

    def state() -> str:
        with db.connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT Estado FROM MensajesSalientes WHERE WamidSaliente = ?", (wamid,))
            return cur.fetchone()[0]

    before = state()
    for forged in ("5215559999999", ""):
        body, headers = meta.signed_body(meta.envelope(statuses=[meta.status_update(wamid, "read", forged)]),
                                         APP_SECRET)
        assert httpx.post(server.url + "/webhook", content=body, headers=headers).status_code == 200
        assert state() == before
    body, headers = meta.signed_body(meta.envelope(statuses=[meta.status_update(wamid, "read", tel)]), APP_SECRET)
    assert httpx.post(server.url + "/webhook", content=body, headers=headers).status_code == 200
    assert state() == "LEIDO"
