"""Hostile or careless configuration gives one readable line, never a hang or a traceback."""

from __future__ import annotations

import os

import pytest

from bot_core.config import load_config
from bot_core.errors import ConfigError
from tests.conftest import botctl


@pytest.mark.parametrize("url", ["postgresql://bot:hunter2@db.example/x", "mssql://srv/db?auth=password&pwd=x",
                                 "mssql://srv/db?Password=x"])
def test_a_password_inside_the_db_url_in_yaml_is_refused(tmp_path, url):
    (tmp_path / "botctl.yaml").write_text(f'db: "{url}"\n')
    with pytest.raises(ConfigError, match="BOTCTL_DB_PASSWORD") as caught:
        load_config(tmp_path / "botctl.yaml", env={})
    assert "hunter2" not in str(caught.value)
    load_config(None, env={"BOTCTL_DB": "postgresql://bot@db.example/x"})  # without one: fine


@pytest.mark.parametrize("text", ["a: &a {b: *a}\n", "ai: &a\n  x: *a\n",
                                  "a: &a {x: 1, y: 2}\nb: &b {p: *a, q: *a, r: *a, s: *a}\n"
                                  "c: &c {p: *b, q: *b, r: *b, s: *b}\nd: &d {p: *c, q: *c, r: *c, s: *c}\n"
                                  "e: &e {p: *d, q: *d, r: *d, s: *d}\nf: {p: *e, q: *e, r: *e, s: *e}\n"])
def test_recursive_or_exploding_yaml_aliases_are_one_line(tmp_path, text):
    (tmp_path / "botctl.yaml").write_text(text)
    with pytest.raises(ConfigError, match="aliases"):
        load_config(tmp_path / "botctl.yaml", env={})


def test_a_secret_file_that_is_a_fifo_a_folder_a_device_or_binary_is_one_line(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: a blocking read would hang forever
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    nul = tmp_path / "nul"
    nul.write_bytes(b"abc\x00def")
    for path, reason in ((fifo, "not a regular file"), (tmp_path, "not a regular file"),
                         ("/dev/zero", "not a regular file"), (binary, "not UTF-8"), (nul, "binary")):
        with pytest.raises(ConfigError, match=reason):
            load_config(None, env={"BOTCTL_APP_SECRET_FILE": str(path)})
    good = tmp_path / "secret"
    good.write_text("s3cret\n")
    assert load_config(None, env={"BOTCTL_APP_SECRET_FILE": str(good)}).get("app_secret") == "s3cret"


def test_the_cli_says_it_in_one_line(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = botctl("migrate", "status", "--db", f"sqlite:///{tmp_path / 'x.db'}",
               env={"BOTCTL_APP_SECRET_FILE": str(fifo)}, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not a regular file" in r.stderr
    (tmp_path / "botctl.yaml").write_bytes(b"\xff\xfe binary")
    r = botctl("migrate", "status", cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not UTF-8" in r.stderr


def test_production_configuration_has_no_crash_switch(tmp_path):
    (tmp_path / "botctl.yaml").write_text("fault:\n  crash_after_ingest: wamid.\n")
    with pytest.raises(ConfigError, match="unknown setting 'fault.crash_after_ingest'"):
        load_config(tmp_path / "botctl.yaml", env={})
