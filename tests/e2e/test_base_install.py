"""A plain `pip install botctl` (base dependencies only, no extras), used from another directory:
the README's commands work, and what needs an extra or a system library says so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from tests.conftest import ROOT
from tests.support.base_venv import make_base_venv
from tests.support.fake_http import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def base_bin(tmp_path_factory):
    return make_base_venv(tmp_path_factory.mktemp("base-venv") / "venv", ROOT)


def run(bin_dir, *args, cwd, env=None, timeout=120):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BOTCTL_", "PYTHON", "VIRTUAL_ENV"))}
    full.update(env or {})
    return subprocess.run([str(bin_dir / "botctl"), *args], capture_output=True, text=True, cwd=cwd, env=full,
                          timeout=timeout)


def one_line(r, code):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_no_extra_is_installed(base_bin):
    probe = subprocess.run([str(base_bin / "python"), "-c", "import importlib.util as u; "
                            "print([m for m in ('azure', 'sqlglot', 'pytest') if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd="/")
    assert probe.stdout.strip() == "[]"


def test_the_readme_flow_works_from_another_directory(base_bin, tmp_path):
    """migrate, serve --demo, chat through the Graph API stand-in, loadtest, metrics on the local telemetry."""
    assert run(base_bin, "--version", cwd=tmp_path).stdout.startswith("botctl ")
    r = run(base_bin, "migrate", "up", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert run(base_bin, "migrate", "status", cwd=tmp_path).returncode == 0
    port, graph = free_port(), free_port()
    serve = subprocess.Popen([str(base_bin / "botctl"), "serve", "--demo", "--port", str(port),
                              "--whatsapp-url", f"http://127.0.0.1:{graph}"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and serve.poll() is None, "serve did not come up"
            time.sleep(0.2)
        webhook = f"http://127.0.0.1:{port}/webhook"
        script = tmp_path / "conversation.txt"
        script.write_text("hola\n1\n4001234\nno enfría\n1\n")
        chat = run(base_bin, "chat", "--url", webhook, "--listen", f"127.0.0.1:{graph}", "--script", str(script),
                   "-q", cwd=tmp_path)
        assert chat.returncode == 0, chat.stderr
        assert "quedó registrado con el ticket" in chat.stdout
        load = run(base_bin, "loadtest", "--url", webhook, "--rate", "10", "--duration", "1",
                   "--threshold", "errors==0", "--verify", "--db", "sqlite:///botctl.db", "-o", "json", "-q",
                   cwd=tmp_path)
        assert load.returncode == 0, load.stderr
        assert json.loads(load.stdout)["verify"]["ok"]
    finally:
        serve.terminate()
        serve.wait(30)
    metrics = run(base_bin, "metrics", "error_rate", "--since", "1h", cwd=tmp_path)
    assert metrics.returncode == 0 and "Traceback" not in metrics.stderr, metrics.stderr
    assert "error_rate" in metrics.stdout


def test_application_insights_names_the_azure_extra(base_bin, tmp_path):
    line = one_line(run(base_bin, "metrics", "--app", "/subscriptions/s/resourceGroups/g/providers/"
                        "microsoft.insights/components/c", "--since", "1h", cwd=tmp_path), 2)
    assert "pip install 'botctl[azure]'" in line


def test_pyodbc_without_libodbc_names_the_system_package(base_bin, tmp_path):
    """pyodbc imports but its shared library is missing: the one line names unixodbc, not an extra.
    (The real libodbc.so.2 is installed here; a stand-in pyodbc fails exactly as the real one would.)"""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pyodbc.py").write_text('raise ImportError("libodbc.so.2: cannot open shared object file: '
                                      'No such file or directory")\n')
    r = run(base_bin, "migrate", "status", "--db", "postgresql://u@127.0.0.1:5432/x", cwd=tmp_path,
            env={"PYTHONPATH": str(shadow)})
    line = one_line(r, 2)
    assert "libodbc.so.2" in line and "apt-get install unixodbc" in line and "botctl[odbc]" not in line
