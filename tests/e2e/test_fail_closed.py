"""Every start that is not explicit local development refuses to run without its secrets,
in one line; files the server creates are owner-only (docs/security.md)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, botctl
from tests.e2e.servers import BotServer
from tests.support.fake_http import free_port

pytestmark = [pytest.mark.e2e]
SECRETS = {"BOTCTL_APP_SECRET": "fail-closed-app-secret", "BOTCTL_VERIFY_TOKEN": "fail-closed-verify"}


def run(cmd: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    full.update({"PYTHONPATH": str(ROOT), **env})
    # A start that does not refuse serves until killed: the timeout turns that into a failure.
    return subprocess.run(cmd, capture_output=True, text=True, env=full, cwd=cwd, timeout=60)


def one_line_refusal(result: subprocess.CompletedProcess, *needles: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]


@pytest.mark.parametrize("host", ["", "0.0.0.0", "localhost"])
def test_serve_on_an_address_that_is_not_literally_loopback_needs_secrets(tmp_path, host):
    r = botctl("serve", "--host", host, "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'x.db'}",
               cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    one_line_refusal(r, "BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN")


def test_serve_on_a_public_address_needs_the_hash_key_too(tmp_path):
    r = botctl("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'x.db'}",
               env=SECRETS, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    one_line_refusal(r, "BOTCTL_HASH_KEY")


@pytest.mark.parametrize("env,needle", [({}, "BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN"),
                                        ({"BOTCTL_APP_SECRET": "only-the-secret"}, "BOTCTL_VERIFY_TOKEN"),
                                        (SECRETS, "BOTCTL_HASH_KEY")])
def test_the_uvicorn_factory_refuses_to_start_without_secrets(tmp_path, env, needle):
    env = {"BOTCTL_DB": f"sqlite:///{tmp_path / 'x.db'}", **env}
    r = run([sys.executable, "-m", "uvicorn", "--factory", "cli.serve_app:create_app_from_env",
             "--host", "127.0.0.1", "--port", str(free_port())], env, tmp_path)
    one_line_refusal(r, needle)


@pytest.mark.parametrize("env,needle", [({}, "BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN"),
                                        (SECRETS, "BOTCTL_HASH_KEY")])
def test_the_functions_entry_point_refuses_to_start_without_secrets(tmp_path, env, needle):
    pytest.importorskip("azure.functions", reason="azure-functions (the azure extra) is not installed")
    env = {"BOTCTL_DB": f"sqlite:///{tmp_path / 'x.db'}", **env}
    app = ROOT / "deploy" / "azure-functions" / "function_app.py"
    r = run([sys.executable, "-c", f"import runpy; runpy.run_path({str(app)!r})"], env, tmp_path)
    one_line_refusal(r, needle)


def test_files_the_server_creates_are_owner_only(tmp_path):
    db = tmp_path / "fresh.db"
    old = os.umask(0o022)  # the usual umask: without care, files come out world-readable
    try:
        with BotServer(f"sqlite:///{db}", tmp_path) as server:
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 503  # not migrated
            server.stop()  # flushes the telemetry file
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (db, server.telemetry)}
    finally:
        os.umask(old)
    assert all(mode & 0o077 == 0 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
