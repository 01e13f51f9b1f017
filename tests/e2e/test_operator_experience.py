"""Issue 13: the operator's experience through the real `botctl` entry point, in subprocesses.

Each test asserts the exit code, the one line on stderr and that no traceback shows.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, botctl
from tests.e2e.servers import APP_SECRET, BotServer
from tests.support.fake_http import free_port
from tests.support.tls import self_signed

pytestmark = [pytest.mark.e2e]


def one_line(r, code: int) -> str:
    """The single stderr line of a failed command (and no traceback anywhere)."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# --- read-only commands never create a database, and leave no lock file -------------------------

@pytest.mark.parametrize("command", [["migrate", "status"], ["migrate", "validate"], ["migrate", "repair"]])
def test_read_only_migrate_commands_do_not_create_a_database(tmp_path, command):
    line = one_line(botctl(*command, cwd=tmp_path), 2)
    assert "database botctl.db does not exist" in line and "botctl migrate up" in line
    assert list(tmp_path.iterdir()) == []


def test_migrate_up_leaves_no_lock_file(tmp_path):
    r = botctl("migrate", "up", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["botctl.db"]
    r = botctl("migrate", "status", "-q", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr


# --- loadtest: k6-style summary, JSON on request, exit codes, https, --equipment -----------------

def _served_db(tmp_path, demo: bool = True) -> str:
    from bot_core.demo import seed_demo_equipment
    from bot_core.storage import open_database
    from migrations.runner import MigrationRunner

    url = f"sqlite:///{tmp_path / 'served.db'}"
    MigrationRunner(open_database(url)).up()
    if demo:
        seed_demo_equipment(open_database(url))
    return url


def test_loadtest_against_a_dead_server_is_one_line_exit_2(tmp_path):
    line = one_line(botctl("loadtest", "--url", f"http://127.0.0.1:{free_port()}/webhook", "--rate", "5",
                           "--duration", "1", cwd=tmp_path), 2)
    assert "no server at http://127.0.0.1:" in line and "connection refused" in line


def test_loadtest_verify_needs_the_servers_database_named(tmp_path):
    line = one_line(botctl("loadtest", "--url", "http://127.0.0.1:1/webhook", "--verify", cwd=tmp_path), 2)
    assert "--verify reads the server's database: name it with --db" in line
    assert list(tmp_path.iterdir()) == []


def test_loadtest_summary_on_stderr_json_only_on_request(tmp_path):
    url = _served_db(tmp_path)
    env = {"BOTCTL_APP_SECRET": APP_SECRET}
    with BotServer(url, tmp_path) as server:
        r = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "20", "--duration", "1",
                   "--threshold", "errors==0", "--threshold", "p(50)<0.001", "--summary", str(tmp_path / "s.json"),
                   env=env, cwd=tmp_path)
        as_json = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "10", "--duration", "1",
                         "-o", "json", "-q", env=env, cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    passed = re.search(r"^  ✓ errors==0 +errors=0$", r.stderr, re.M)
    failed = re.search(r"^  ✗ p\(50\)<0\.001 +p\(50\)=(\d+\.\d+)(ms|s)$", r.stderr, re.M)
    assert passed and failed, r.stderr
    assert len(failed[1].split(".")[1]) <= 2  # sensible precision, not 7.999
    assert re.search(r"^botctl: error: failed: p\(50\)<0\.001 \(p\(50\)=[\d.]+m?s\)$", r.stderr, re.M)
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["acknowledged"] == written["deliveries"] > 0
    for key in ("p50", "p95", "p99", "avg", "max"):
        value = written["latency_ms"][key]
        assert value == round(value, 2), (key, value)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["requests"] > 0 and as_json.stderr == ""


def test_loadtest_exits_1_when_nothing_is_acknowledged(tmp_path):
    from tests.support.fake_http import FakeHttpServer

    with FakeHttpServer(lambda *request: (503, {"error": "down"})) as fake:
        r = botctl("loadtest", "--url", fake.url + "/webhook", "--rate", "10", "--duration", "0.5",
                   "--max-redeliveries", "0", "-q", cwd=tmp_path)
    line = one_line(r, 1)
    assert line.startswith("botctl: error: failed: no delivery was acknowledged (") and "HTTP 5xx" in line


def test_loadtest_equipment_the_server_lacks_is_explained_and_another_code_works(tmp_path):
    from bot_core.storage import open_database

    url = _served_db(tmp_path)
    env = {"BOTCTL_APP_SECRET": APP_SECRET}
    with BotServer(url, tmp_path) as server:
        ok = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "10", "--duration", "2",
                    "--equipment", "4005678", "--verify", "--db", url, "-q", env=env, cwd=tmp_path)
        missing = botctl("loadtest", "--url", server.url + "/webhook", "--rate", "10", "--duration", "2",
                         "--equipment", "4999999", "--verify", "--db", url, "-q", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    with open_database(url).connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM Reportes r JOIN Equipos e ON e.EquipoId = r.EquipoId "
                    "WHERE e.CodigoSAP = '4005678'")
        assert cur.fetchone()[0] > 0
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("warning: the database has no active Equipo 4999999")
    assert "failed: the database has no active Equipo 4999999" in missing.stderr
    assert "`botctl serve --demo`" in missing.stderr and "--equipment CODE" in missing.stderr


def test_loadtest_speaks_https(tmp_path):
    """The bot app behind uvicorn's TLS; trusted through SSL_CERT_FILE, refused in one line otherwise."""
    pytest.importorskip("cryptography", reason="cryptography (with the azure extra) makes the test certificate")
    cert, key = self_signed(tmp_path)
    url = _served_db(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    env.update({"BOTCTL_DB": url, "BOTCTL_APP_SECRET": APP_SECRET, "BOTCTL_VERIFY_TOKEN": "v",
                "BOTCTL_SERVE_HOST": "127.0.0.1", "BOTCTL_TELEMETRY_FILE": str(tmp_path / "t.jsonl"),
                "PYTHONPATH": str(ROOT)})
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "cli.serve_app:create_app_from_env", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--ssl-certfile", cert,
                               "--ssl-keyfile", key, "--log-level", "warning"], cwd=tmp_path, env=env)
    try:
        _wait_for_port(port)
        target = f"https://127.0.0.1:{port}/webhook"
        ok = botctl("loadtest", "--url", target, "--rate", "10", "--duration", "1", "--threshold", "errors==0",
                    "--verify", "--db", url, "-q", env={"BOTCTL_APP_SECRET": APP_SECRET, "SSL_CERT_FILE": cert},
                    cwd=tmp_path)
        untrusted = botctl("loadtest", "--url", target, "--rate", "10", "--duration", "1",
                           env={"BOTCTL_APP_SECRET": APP_SECRET}, cwd=tmp_path)
    finally:
        server.terminate()
        server.wait(20)
    assert ok.returncode == 0, ok.stderr
    line = one_line(untrusted, 2)
    assert f"TLS with 127.0.0.1:{port} failed" in line and "certificate" in line and "SSL_CERT_FILE" in line


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# --- --version, -h, shell completion -------------------------------------------------------------

def test_version_and_short_help():
    from importlib.metadata import version

    r = botctl("--version")
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, f"botctl {version('botctl')}", "")
    for args in (["-h"], ["migrate", "status", "-h"], ["loadtest", "-h"]):
        r = botctl(*args)
        assert r.returncode == 0 and "Usage: botctl" in r.stdout and "Traceback" not in r.stderr, args


@pytest.mark.parametrize("words, expected", [
    ("botctl serve --mode ", {"inline", "queued"}),
    ("botctl metrics --source ", {"appinsights", "local"}),
    ("botctl migrate status --output ", {"table", "json", "csv"}),
    ("botctl checklist -o j", {"json", "junit"}),
    ("botctl mig", {"migrate"}),
])
def test_bash_completion_offers_the_choices(words, expected):
    r = botctl(env={"_BOTCTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
                    "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    assert r.returncode == 0 and set(r.stdout.split()) == expected, (r.stdout, r.stderr)


def test_completion_script_can_be_shown_in_bash():
    # Typer finds the shell from the process tree, as an operator's terminal would have it: run from
    # an interactive-like bash parent (a second command keeps bash from exec'ing into botctl), not
    # from whatever shell started the test run (CI's make uses sh, which Typer does not support).
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "cli.app", "--show-completion"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    r = subprocess.run(["bash", "-c", f"{command}; exit $?"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "_BOTCTL_COMPLETE=complete_bash" in r.stdout, r.stderr


# --- times: round bins, ISO-8601 UTC with Z, zoneless --from is UTC, applied_at, repair -------------

def _request_line(at: str, ok: bool = True) -> str:
    return json.dumps({"itemType": "request", "name": "POST /webhook", "url": "/webhook",
                       "resultCode": "200" if ok else "500", "success": ok, "duration": 3.5, "timestamp": at,
                       "itemCount": 1, "operation_Id": "x", "customDimensions": {"event_name": "webhook.request"}})


ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z"


def test_metrics_bins_are_round_and_every_time_is_utc_with_z(tmp_path):
    telemetry = tmp_path / "t.jsonl"
    telemetry.write_text("\n".join(_request_line(f"2024-05-01T{h:02d}:{m:02d}:{s:02d}.123456Z", ok=m % 2 == 0)
                                   for h, m, s in ((8, 1, 7), (8, 16, 40), (8, 33, 2), (9, 2, 59))) + "\n")
    r = botctl("metrics", "error_rate", "--file", str(telemetry), "--since", "4h", "--bin", "15m",
               "--now", "2024-05-01T10:07:31.584824", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "--now 2024-05-01T10:07:31.584824 has no time zone: taken as UTC" in r.stderr
    rows = re.findall(rf"^({ISO_Z}) +\d+", r.stdout, re.M)
    assert rows == ["2024-05-01T08:00:00Z", "2024-05-01T08:15:00Z", "2024-05-01T08:30:00Z", "2024-05-01T09:00:00Z"]
    assert "+00:00" not in r.stdout + r.stderr
    as_json = botctl("metrics", "error_rate", "--file", str(telemetry), "--from", "2024-05-01T08:00",
                     "--to", "2024-05-01T12:00:00+02:00", "-o", "json", "-q", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert (doc["from"], doc["to"]) == ("2024-05-01T08:00:00Z", "2024-05-01T10:00:00Z")
    times = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]*)"', as_json.stdout)
    assert times and all(re.fullmatch(ISO_Z, t) for t in times), times


def test_zoneless_from_is_said_to_be_utc(tmp_path):
    telemetry = tmp_path / "t.jsonl"
    telemetry.write_text(_request_line("2024-05-01T08:01:07Z") + "\n")
    r = botctl("metrics", "error_rate", "--file", str(telemetry), "--from", "2024-05-01T08:00",
               "--to", "2024-05-01T09:00Z", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--from 2024-05-01T08:00 has no time zone: taken as UTC (2024-05-01T08:00:00Z)" in r.stderr
    assert "--to" not in r.stderr.replace("--to 2024", "")  # --to named its zone: nothing said


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_applied_at_is_utc_with_z_and_repair_keeps_it(tmp_path, dialect, request, copy_migrations):
    """Same format in every dialect; a repair that realigns a checksum records its own time."""
    url = f"sqlite:///{tmp_path / 'm.db'}" if dialect == "sqlite" else request.getfixturevalue("pg_url")
    assert botctl("migrate", "up", "--db", url, "-q").returncode == 0
    before = json.loads(botctl("migrate", "status", "--db", url, "-o", "json").stdout)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", row["applied_at"]) for row in before)
    from bot_core.storage import open_database

    db = open_database(url)
    with db.connection() as conn:  # the operator edited an applied file; repair realigns its checksum
        with db.transaction(conn) as cur:
            cur.execute("UPDATE botctl_schema_history SET checksum = 'edited' WHERE version = '001'")
    time.sleep(0.01)
    r = botctl("migrate", "repair", "--db", url)
    assert r.returncode == 0 and "realigned checksum" in r.stdout, r.stderr
    after = {row["version"]: row for row in json.loads(botctl("migrate", "status", "--db", url, "-o", "json").stdout)}
    assert after["001"]["applied_at"] == before[1]["applied_at"] and after["001"]["state"] == "applied"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", after["001"]["repaired_at"])
    assert after["001"]["repaired_at"] > after["001"]["applied_at"] and after["002"]["repaired_at"] is None
    table = botctl("migrate", "status", "--db", url).stdout
    assert "repaired_at" in table.splitlines()[0]


# --- serve: port in use, bad secret file -----------------------------------------------------------

def test_serve_on_a_port_in_use_is_one_line_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = botctl("serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path, timeout=60)
    line = one_line(r, 2)
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in line and "--port" in line
    assert "serving" not in r.stdout + r.stderr


@pytest.mark.parametrize("variable, fragment", [
    ("SSL_CERT_FILE", "cannot load the CA certificates in {path}: No such file or directory"),
    ("SSL_CERT_DIR", "SSL_CERT_DIR {path} is not a directory"),
])
def test_serve_with_a_ca_setting_it_cannot_read_is_one_line_exit_2(tmp_path, variable, fragment):
    """Outbound HTTPS (Graph API, AI) would trust nothing: refused before serving, not on the first reply."""
    path = tmp_path / "missing"
    unset = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}  # empty: as if unset (this machine sets them)
    r = botctl("serve", "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path,
               env={**unset, variable: str(path)}, timeout=60)
    assert fragment.format(path=path) in one_line(r, 2)
    assert "serving" not in r.stdout + r.stderr


@pytest.mark.parametrize("content, fragment", [
    (None, "cannot read app_secret_file {path}: No such file or directory"),
    ("", "app_secret_file {path} is empty"),
    ("  \n", "app_secret_file {path} is empty"),
    (b"\xff\xfe\x00", "app_secret_file {path} is not UTF-8 text"),
])
def test_a_bad_secret_file_is_one_line_exit_2(tmp_path, content, fragment):
    path = tmp_path / "secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    r = botctl("serve", "--port", str(free_port()), env={"BOTCTL_APP_SECRET_FILE": str(path)}, cwd=tmp_path,
               timeout=60)
    assert one_line(r, 2) == "botctl: error: " + fragment.format(path=path)
    assert not (tmp_path / "botctl.db").exists()


# --- make run installs only when pyproject.toml changed --------------------------------------------

def test_make_run_reinstalls_only_when_pyproject_changes(tmp_path):
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(os.path.dirname(sys.executable))

    def planned() -> str:
        return subprocess.run(["make", "-n", "run"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    assert "pip install" in planned()  # never installed here
    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    assert "pip install" not in planned() and "botctl serve --demo" in planned()
    os.utime(tmp_path / "pyproject.toml", (time.time() + 5, time.time() + 5))
    assert "pip install -q -e ." in planned()
