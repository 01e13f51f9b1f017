"""Issue 13: the operator's experience through the real `botctl` entry point, in subprocesses.

Each test asserts the exit code, the one line on stderr and that no traceback shows.
"""

from __future__ import annotations

import pytest

from tests.conftest import botctl

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
