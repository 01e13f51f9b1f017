"""`botctl chat` as a user without a phone number (--user-id) and the conversation fixes of issue 11."""

from __future__ import annotations

import json

import pytest

from bot_core.conversation import replies as r
from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from migrations.runner import MigrationRunner
from tests.conftest import botctl

pytestmark = [pytest.mark.e2e]
BSUID = "MX.1349120865530274191"


def _chat(tmp_path, url, lines, *who):
    script = tmp_path / "script.txt"
    script.write_text("\n".join(lines) + "\n")
    r_ = botctl("chat", "--db", url, "--script", str(script), *who, "-q", cwd=tmp_path)
    assert r_.returncode == 0, r_.stderr
    return r_.stdout


def _rows(url, sql):
    with open_database(url).connection() as conn:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def test_a_user_without_a_phone_reports_a_vehicle_and_only_they_read_its_status(tmp_path):
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    MigrationRunner(open_database(url)).up()
    seed_demo_equipment(open_database(url))
    out = _chat(tmp_path, url, [
        "Vehículo",            # an option's title, typed
        "12",                  # not an employee number: the bot says what it expects
        "12345",
        "mi refri no enfría",  # another report mid-report: asked first, with buttons
        "2",                   # "No, seguir"
        "ABC-123-D",           # the plate keeps its full text
        "no arranca",
        "1",                   # Confirmar
    ], "--user-id", BSUID)
    assert r.EXPECTED["VEHICULO_ESPERA_EMPLEADO"] in out
    assert "¿Quieres dejarlo y empezar uno de *refrigerador*?" in out and r.KEEP_GOING in out
    ((ticket, telefono, usuario, descripcion),) = _rows(
        url, "SELECT NumeroTicket, Telefono, UsuarioId, Descripcion FROM Reportes")
    assert (telefono, usuario, descripcion) == (BSUID, BSUID, "Placa ABC-123-D: no arranca")
    assert _rows(url, "SELECT COUNT(*) FROM MensajesProcesados WHERE Telefono IS NULL") == [(8,)]

    own = _chat(tmp_path, url, [f"estado {ticket[-8:]}"], "--user-id", BSUID)
    assert ticket in own and "pendiente" in own and "Elige una opción" not in own  # no menu repeated
    other = _chat(tmp_path, url, [f"estado {ticket[-8:]}"], "--phone", "5215550007777")
    assert f"No encontré ningún reporte con el ticket *{ticket[-8:]}*" in other


def test_a_malformed_user_id_is_one_line_and_exit_2(tmp_path):
    result = botctl("chat", "--user-id", "not-a-bsuid", "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 2 and "--user-id" in result.stderr and "Traceback" not in result.stderr


def test_typed_numbers_and_an_old_menu_button_through_chat(tmp_path):
    """Issue 11, item 3 end to end: /text sends a number as typed text (not a tap); /tap taps a button
    of a menu the bot sent earlier, as a user scrolling up in WhatsApp can."""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    MigrationRunner(open_database(url)).up()
    out = _chat(tmp_path, url, [
        "hola",
        "/text 2",             # typed at the menu: picks option 2, Vehículo
        "/tap Refrigerador",   # the first menu's button, tapped mid-report: asked first
        "/text 2",             # typed at that question: "No, seguir"
        "12345",
        "ABC-123-D",
        "no arranca",
        "/text 1",             # typed at the confirmation: Confirmar
    ], "--phone", "5215550001234")
    assert "número de empleado" in out
    assert "¿Quieres dejarlo y empezar uno de *refrigerador*?" in out
    assert "seguimos con tu reporte" in out
    assert "Perdón, no entendí" not in out
    assert _rows(url, "SELECT Descripcion FROM Reportes") == [("Placa ABC-123-D: no arranca",)]
    # What was sent is what the user did: the typed numbers went as text, the old button as a tap.
    payloads = [json.loads(p) for (p,) in _rows(url, "SELECT Payload FROM MensajesProcesados")]
    assert sorted(p["text"] for p in payloads if p["kind"] == "interactive") == ["Refrigerador"]
    assert sorted(p["text"] for p in payloads if p["kind"] == "text" and len(p["text"]) == 1) == ["1", "2", "2"]


def test_tapping_what_was_never_offered_sends_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    MigrationRunner(open_database(url)).up()
    script = tmp_path / "script.txt"
    script.write_text("hola\n/tap Camión\n")
    result = botctl("chat", "--db", url, "--script", str(script), "-q", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "/tap Camión: no button or list row with that title was offered (offered: " in result.stderr
    assert "Refrigerador" in result.stderr
    assert _rows(url, "SELECT COUNT(*) FROM MensajesProcesados") == [(1,)]
