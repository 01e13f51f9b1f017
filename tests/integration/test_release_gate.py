"""The release gate's control flow: red JUnit still reaches the checklist, and nothing is swallowed.

`.ci/release-gate` runs `$BOTCTL`: here a stand-in that records each command, answers
`serve` with a loopback health endpoint, exits `loadtest` and `checklist` with the codes a
case asks for, and hands `migrate` and `alerts` to the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FAKE = r'''#!/usr/bin/env bash
echo "$1 ${*:2}" >> "$GATE_CALLS"
case "$1" in
  serve)
    port=$(printf '%s\n' "$@" | grep -A1 -x -- --port | tail -1)
    exec "$PYTHON" -c "
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()" "$port" ;;
  loadtest) echo '{}' > "$GATE_REPORTS/loadtest.json"; exit "$FAKE_LOADTEST_EXIT" ;;
  checklist) exit "$FAKE_CHECKLIST_EXIT" ;;
  *) exec "$PYTHON" -m cli.app "$@" ;;
esac
'''


@pytest.fixture
def gate(tmp_path):
    fake = tmp_path / "botctl"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    reports = tmp_path / "reports"
    reports.mkdir()

    def run(pytest_exit: int, loadtest_exit: int = 0, checklist_exit: int = 0):
        calls = tmp_path / "calls"
        calls.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTCTL", "GATE_"))}
        env.update(BOTCTL=str(fake), PYTHON=sys.executable, GATE_REPORTS=str(reports), GATE_CALLS=str(calls),
                   PYTEST_EXIT=str(pytest_exit), FAKE_LOADTEST_EXIT=str(loadtest_exit),
                   FAKE_CHECKLIST_EXIT=str(checklist_exit), PYTHONPATH=str(ROOT))
        r = subprocess.run(["bash", str(ROOT / ".ci" / "release-gate")], env=env, capture_output=True,
                           text=True, timeout=240)
        return r, [line.split()[0] for line in calls.read_text().splitlines()]

    return run


def test_green_everything_exits_0_and_the_checklist_runs_last(gate):
    r, calls = gate(pytest_exit=0)
    assert r.returncode == 0, r.stderr
    assert calls[-1] == "checklist" and "loadtest" in calls and calls.count("migrate") >= 2


def test_red_pytest_still_runs_the_checklist_then_fails(gate):
    r, calls = gate(pytest_exit=1, checklist_exit=0)
    assert "checklist" in calls and r.returncode == 1
    assert "pytest exited 1" in r.stderr


def test_the_checklists_own_verdict_wins(gate):
    r, calls = gate(pytest_exit=1, checklist_exit=1)
    assert calls[-1] == "checklist" and r.returncode == 1
    r, _ = gate(pytest_exit=0, checklist_exit=2)
    assert r.returncode == 2


def test_a_failed_load_test_still_reaches_the_checklist(gate):
    r, calls = gate(pytest_exit=0, loadtest_exit=1)
    assert calls[-1] == "checklist" and r.returncode == 1
    assert "loadtest exited 1" in r.stderr


def test_make_test_keeps_pytests_exit_code_for_the_gate():
    recipe = (ROOT / "Makefile").read_text().split("\ntest:")[1].split("\n\n")[0]
    assert "echo $$? > reports/pytest-exit-code" in recipe
    assert "PYTEST_EXIT=$$(cat reports/pytest-exit-code)" in recipe and ".ci/release-gate" in recipe
