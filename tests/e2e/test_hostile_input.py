"""A hostile sender against a real `botctl serve`: the server keeps answering, nothing is lost."""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest

from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.e2e.dbcheck import scalar, wait_all_processed
from tests.e2e.servers import APP_SECRET, BotServer

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{workdir / 'hostile.db'}"
    MigrationRunner(open_database(url)).up()
    with BotServer(url, workdir) as srv:
        srv.db_url = url
        yield srv


def _post(server: BotServer, payload: dict) -> httpx.Response:
    body, headers = meta.signed_body(payload, APP_SECRET)
    return httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=120)


def _healthz_latency(server: BotServer) -> float:
    started = time.perf_counter()
    # A generous timeout only to turn a frozen server into a failure instead of a hang.
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
    return time.perf_counter() - started


def test_healthz_answers_while_hostile_texts_are_understood(server):
    baseline = statistics.median(_healthz_latency(server) for _ in range(5))
    texts = ["codigo" + " " * 4090 + "x", "placa" + "\n" * 4090 + "x", "numero de empleado" + " " * 4070 + "x",
             "codigo sap" + " 7" * 2040 + "x", "codigo" + " " * 65_530 + "x", "#" + " " * 65_530 + "1"]
    before = scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados")
    statuses: list[int] = []

    def deliver_all() -> None:
        for i, text in enumerate(texts):
            message = meta.text_message(f"52155570{i:05d}", text, wamid=f"wamid.HOSTILE{i}")
            statuses.append(_post(server, meta.envelope([message])).status_code)

    sender = threading.Thread(target=deliver_all)
    sender.start()
    during = []
    while sender.is_alive() or not during:
        during.append(_healthz_latency(server))
    sender.join()
    assert statuses == [200] * len(texts)
    wait_all_processed(server.db_url, before + len(texts), timeout=60)
    # Each was understood and answered: a reply went to every sender.
    assert scalar(server.db_url, "SELECT COUNT(DISTINCT MensajeOrigenId) FROM MensajesSalientes "
                                 "WHERE MensajeOrigenId LIKE 'wamid.HOSTILE%'") == len(texts)
    print(f"/healthz: baseline {baseline * 1000:.1f} ms, worst during {max(during) * 1000:.1f} ms "
          f"({max(during) / baseline:.1f}x) over {len(during)} calls")


def _telemetry_rows(server: BotServer) -> list[dict]:
    import json
    return [json.loads(line) for line in server.telemetry.read_text(encoding="utf-8").splitlines() if line]


def test_a_message_that_is_not_valid_unicode_does_not_sink_its_neighbours(serve_factory, tmp_path):
    """A client that cuts an emoji in half sends a lone surrogate ("\\ud83d")."""
    url = f"sqlite:///{tmp_path / 'unicode.db'}"
    MigrationRunner(open_database(url)).up()
    server = serve_factory(url)
    server.db_url = url
    tel = "5215557100001"
    payload = meta.envelope([meta.text_message(tel, "hola", wamid="wamid.NEIGHBOUR1"),
                             meta.text_message(tel, "se cortó el emoji \ud83d", wamid="wamid.HALFEMOJI"),
                             meta.text_message(tel, "hola", wamid="wamid.BAD\ud800ID"),
                             meta.text_message("52155\udfff", "hola", wamid="wamid.BADPHONE"),
                             meta.text_message(tel, "menu", wamid="wamid.NEIGHBOUR2")])
    body, _ = meta.signed_body(payload, APP_SECRET)
    assert b"\\ud83d" in body  # the bytes Meta would relay
    for attempt in range(2):  # a redelivery of the same bytes is answered the same way, not 503
        response = _post(server, payload)
        assert response.status_code == 200, response.text
        assert response.json()["skipped"] == 2
    assert response.json()["duplicates"] == 3
    ids = {"wamid.NEIGHBOUR1", "wamid.HALFEMOJI", "wamid.NEIGHBOUR2"}
    for mid in ids:
        assert scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados WHERE MensajeId = ?", (mid,)) == 1
    wait_all_processed(server.db_url, scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados"))
    db = open_database(server.db_url)
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Contenido FROM MensajesChat WHERE MensajeId = 'wamid.HALFEMOJI' AND Tipo = 'U'")
        assert cur.fetchone()[0] == "se cortó el emoji \\ud83d"  # stored escaped, visibly
    server.stop()  # flush the telemetry file and the log
    invalid = [r["customDimensions"] for r in _telemetry_rows(server)
               if r["customDimensions"].get("event_name") == "message.invalid"]
    assert len(invalid) == 4 and {d["reason"] for d in invalid} == {"message id or phone is not valid Unicode"}
    assert all(set(d) <= {"event_name", "reason"} for d in invalid)  # no content, no id, no phone
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "UnicodeEncodeError" not in log, log[-2000:]


def test_a_message_the_database_refuses_does_not_sink_its_neighbours(serve_factory, tmp_path):
    """Whatever makes one message unstorable (here a trigger the test plants: the fault comes
    from the test's side), the rest of its delivery is recorded and answered 200, every time."""
    import sqlite3

    path = tmp_path / "poison.db"
    MigrationRunner(open_database(f"sqlite:///{path}")).up()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER poison BEFORE INSERT ON MensajesProcesados "
                     "WHEN NEW.MensajeId = 'wamid.POISON' BEGIN SELECT RAISE(ABORT, 'unstorable'); END")
    server = serve_factory(f"sqlite:///{path}")
    server.db_url = f"sqlite:///{path}"
    tel = "5215557300001"
    payload = meta.envelope([meta.text_message(tel, "hola", wamid="wamid.BESIDE1"),
                             meta.text_message(tel, "hola otra vez", wamid="wamid.POISON"),
                             meta.text_message(tel, "menu", wamid="wamid.BESIDE2")])
    first, again = _post(server, payload), _post(server, payload)
    assert (first.status_code, again.status_code) == (200, 200), first.text
    assert first.json()["received"] == 2 and again.json()["duplicates"] == 2
    assert scalar(server.db_url, "SELECT COUNT(*) FROM MensajesProcesados WHERE MensajeId LIKE 'wamid.BESIDE%'") == 2
    # Alone, an unstorable message cannot be told from a database that is failing: 503, Meta retries.
    assert _post(server, meta.envelope([meta.text_message(tel, "x", wamid="wamid.POISON")])).status_code == 503
    server.stop()
    reasons = [r["customDimensions"].get("reason") for r in _telemetry_rows(server)
               if r["customDimensions"].get("event_name") == "message.invalid"]
    assert reasons == ["cannot be stored (IntegrityError)"] * 2
