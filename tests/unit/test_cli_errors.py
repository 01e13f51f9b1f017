"""Bad input: exit 2, one readable line on stderr, no traceback, no password, nothing changed."""

from __future__ import annotations

import pytest

from tests.conftest import botctl


@pytest.mark.parametrize("args, fragment", [
    (["migrate", "up", "--db", "mysql://u@h/db"], "unknown database URL scheme 'mysql'"),
    (["migrate", "up", "--db", "postgresql://bot@127.0.0.1:1/nodb"], "cannot connect"),
    (["migrate", "down", "--db", "sqlite:///{tmp}/x.db"], "down needs an explicit target"),
    (["migrate", "down", "--to", "42", "--db", "sqlite:///{tmp}/x.db"], "unknown migration version '42'"),
    (["migrate", "up", "--to", "two", "--db", "sqlite:///{tmp}/x.db"], "invalid migration version 'two'"),
    (["migrate", "status", "--output", "xml", "--db", "sqlite:///{tmp}/x.db"], "--output must be one of"),
    (["migrate", "plan", "--dialect", "oracle"], "--dialect must be one of"),
    (["migrate", "frobnicate"], "No such command"),
    (["migrate", "up", "--bogus"], "No such option"),
    (["migrate", "up", "--db", "sqlite:////nonexistent-dir/x.db"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = botctl(*args, env={"BOTCTL_DB_PASSWORD": "hunter2-secret"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "hunter2-secret" not in r.stderr + r.stdout
    assert not (tmp_path / "x.db").exists() or "down" in args


def test_unreachable_database_with_password_is_redacted():
    r = botctl("migrate", "status", "--db", "postgresql://bot@127.0.0.1:1/x",
               env={"BOTCTL_DB_PASSWORD": "hunter2-secret"})
    assert r.returncode == 2 and "bot:***@127.0.0.1:1/x" in r.stderr and "hunter2" not in r.stderr


def test_bad_config_file_is_exit_2(tmp_path):
    (tmp_path / "botctl.yaml").write_text("db: [oops\n")
    r = botctl("migrate", "status", cwd=tmp_path)
    assert r.returncode == 2 and "invalid YAML" in r.stderr and "line" in r.stderr
