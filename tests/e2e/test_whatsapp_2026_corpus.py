"""Meta's 2026 webhook shapes (tests/fixtures/whatsapp_2026_corpus.json) posted signed at a real
`botctl serve` on SQLite and PostgreSQL: every message recorded once, replies exactly where
docs/whatsapp.md says, BSUID-only reports, a phone user continuing under a BSUID, a number change."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.e2e.servers import APP_SECRET

pytestmark = [pytest.mark.e2e]
CORPUS = json.loads((Path(__file__).parents[1] / "fixtures" / "whatsapp_2026_corpus.json").read_text())
U = CORPUS["users"]


def rows(url, sql, params=()):
    with open_database(url).connection() as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        out = [tuple(row) for row in cur.fetchall()]
        conn.rollback()
    return out


def post(server, payload):
    body, headers = meta.signed_body(payload, APP_SECRET)
    response = httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_2026_corpus_through_a_real_server(db_url, serve_factory):
    MigrationRunner(open_database(db_url)).up()
    seed_demo_equipment(open_database(db_url))
    server = serve_factory(db_url)
    expected: dict[str, int] = {}
    for delivery in CORPUS["deliveries"]:
        post(server, delivery["body"])
        for message in delivery["body"]["entry"][0]["changes"][0]["value"]["messages"]:
            if message["id"] != CORPUS["invalid_message_id"]:
                expected[message["id"]] = delivery["replies"]

    # Every message recorded exactly once and processed; the malformed one not at all.
    inbox = dict(rows(db_url, "SELECT MensajeId, Estado FROM MensajesProcesados"))
    assert inbox == {mid: "PROCESADO" for mid in expected}
    chat = rows(db_url, "SELECT MensajeId, COUNT(*) FROM MensajesChat WHERE Tipo = 'U' GROUP BY MensajeId")
    assert dict(chat) == {mid: 1 for mid in expected}
    # Replies exactly where the table says: one for a request, none for an event.
    outbox = dict(rows(db_url, "SELECT MensajeOrigenId, COUNT(*) FROM MensajesSalientes GROUP BY MensajeOrigenId"))
    assert {mid: outbox.get(mid, 0) for mid in expected} == expected

    # A user without a phone completed a refrigerator and a vehicle report, answered at the BSUID.
    reports = rows(db_url, "SELECT TipoReporte, Telefono, UsuarioId, Descripcion FROM Reportes ORDER BY ReporteId")
    assert [(t, k, u) for t, k, u, _ in reports] == [("REFRIGERADOR", U["A"], U["A"]), ("VEHICULO", U["A"], U["A"])]
    assert reports[1][3] == "Placa ABC-123-D: no arranca"
    assert {to for (to,) in rows(db_url, "SELECT DISTINCT m.Telefono FROM MensajesSalientes m "
                                         "JOIN MensajesProcesados p ON p.MensajeId = m.MensajeOrigenId "
                                         "WHERE p.UsuarioId = ? AND p.Telefono IS NULL", (U["A"],))} == {U["A"]}

    # The phone user who later came with a BSUID (and then the BSUID only) kept the same session.
    assert rows(db_url, "SELECT Telefono, Estado, UsuarioId FROM SesionesChat WHERE Telefono = ? OR UsuarioId = ?",
                (U["B_phone"], U["B"])) == [(U["B_phone"], "REFRI_CONFIRMAR", U["B"])]

    # The number change moved the session: the new number's message continued it, answered there.
    assert rows(db_url, "SELECT Telefono, UsuarioId FROM Usuarios WHERE ClaveUsuario = ?", (U["C"],)) == \
        [(U["C_new_phone"], U["C"])]
    assert rows(db_url, "SELECT Estado FROM SesionesChat WHERE Telefono = ?", (U["C"],)) == [("REFRI_ESPERA_SAP",)]
    assert rows(db_url, "SELECT COUNT(*) FROM MensajesSalientes WHERE Telefono = ?", (U["C_new_phone"],)) == [(1,)]

    # A status with the recipient's user id moves the reply by wamid and records the BSUID.
    ((outbox_id, wamid),) = rows(db_url, "SELECT SalienteId, WamidSaliente FROM MensajesSalientes "
                                         "WHERE Telefono = ? AND UsuarioId IS NULL", (U["B_phone"],))
    status = json.loads(json.dumps(CORPUS["status"]).replace("{WAMID}", wamid))
    assert post(server, status)["statuses"] == 1
    assert rows(db_url, "SELECT Estado, UsuarioId FROM MensajesSalientes WHERE SalienteId = ?", (outbox_id,)) == \
        [("LEIDO", U["B"])]

    # Meta redelivers everything: nothing is recorded or answered twice.
    before = rows(db_url, "SELECT COUNT(*) FROM MensajesSalientes")
    for delivery in CORPUS["deliveries"]:
        post(server, delivery["body"])
    assert rows(db_url, "SELECT COUNT(*) FROM MensajesSalientes") == before
    assert rows(db_url, "SELECT COUNT(*) FROM MensajesProcesados") == [(len(expected),)]
