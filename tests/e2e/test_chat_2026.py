"""`botctl chat` as a user without a phone number (--user-id) and the conversation fixes of issue 11."""

from __future__ import annotations

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
