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
