"""Config precedence, database URLs, redaction and the mssql connection seam."""

from __future__ import annotations

import struct

import pytest

from bot_core.config import load_config
from bot_core.errors import ConfigError
from bot_core.storage import parse_db_url
from bot_core.storage.database import (SQL_COPT_SS_ACCESS_TOKEN, azure_token_struct, choose_driver,
                                       database_from_config, odbc_connect_args)


def test_precedence_yaml_then_env_then_flags(tmp_path):
    cfg_file = tmp_path / "botctl.yaml"
    cfg_file.write_text("db: sqlite:///from-yaml.db\nsession_idle_minutes: 10\nai:\n  deadline_extract_ms: 1500\n")
    cfg = load_config(cfg_file, env={})
    assert (cfg["db"], cfg["session_idle_minutes"], cfg["ai.deadline_extract_ms"]) == \
        ("sqlite:///from-yaml.db", 10, 1500)
    cfg = load_config(cfg_file, env={"BOTCTL_DB": "sqlite:///from-env.db", "BOTCTL_AI_DEADLINE_EXTRACT_MS": "900"})
    assert (cfg["db"], cfg["ai.deadline_extract_ms"], cfg.source("db")) == ("sqlite:///from-env.db", 900, "env")
    cfg = load_config(cfg_file, env={"BOTCTL_DB": "sqlite:///from-env.db"}, flags={"db": "sqlite:///flag.db"})
    assert (cfg["db"], cfg.source("db")) == ("sqlite:///flag.db", "flag")


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg["db"] == "sqlite:///botctl.db" and cfg["ai.deadline_detect_ms"] == 3000


@pytest.mark.parametrize("yaml_text, message", [
    ("app_secret: abc\n", "app_secret is a secret"),
    ("nonsense: 1\n", "unknown setting 'nonsense'"),
    ("session_idle_minutes: soon\n", "cannot read 'soon' as int"),
    ("mode: inline\ndb: [unclosed\n", "line 3: invalid YAML"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, yaml_text, message):
    path = tmp_path / "botctl.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as err:
        load_config(path, env={})
    assert "\n" not in str(err.value)


def test_secrets_from_env_or_file_never_from_flags(tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("s3cr3t-from-file\n")
    (tmp_path / "botctl.yaml").write_text(f"app_secret_file: {secret_file}\n")
    cfg = load_config(tmp_path / "botctl.yaml", env={})
    assert cfg["app_secret"] == "s3cr3t-from-file"
    cfg = load_config(tmp_path / "none.yaml" if False else None, env={"BOTCTL_APP_SECRET_FILE": str(secret_file)})
    assert cfg["app_secret"] == "s3cr3t-from-file"
    assert load_config(None, env={"BOTCTL_APP_SECRET": "env"})["app_secret"] == "env"
    with pytest.raises(ConfigError, match="is a secret"):
        load_config(None, env={}, flags={"app_secret": "typed-on-the-command-line"})


@pytest.mark.parametrize("url, dialect, database", [
    ("sqlite:///botctl.db", "sqlite", "botctl.db"),
    ("sqlite:////var/lib/botctl.db", "sqlite", "/var/lib/botctl.db"),
    ("postgresql://bot@db.internal:5433/botdb", "postgresql", "botdb"),
    ("postgres://bot@db/botdb", "postgresql", "botdb"),
    ("mssql://srv.database.windows.net/bot?auth=msi", "mssql", "bot"),
])
def test_parse_db_url(url, dialect, database):
    parsed = parse_db_url(url)
    assert (parsed.dialect, parsed.database) == (dialect, database)


@pytest.mark.parametrize("url, message", [
    ("mysql://x/y", "unknown database URL scheme 'mysql'"),
    ("botctl.db", "expected scheme"),
    ("postgresql://host-only", "needs a host and a database"),
    ("mssql://srv/db?auth=kerberos", "auth must be one of"),
    ("postgresql://u@h:notaport/db", "invalid port"),
])
def test_bad_urls(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_db_url(url)


def test_redaction_never_shows_a_password():
    url = parse_db_url("postgresql://bot:hunter2@db:5432/botdb?password=hunter3&sslmode=require")
    text = url.redacted()
    assert "hunter2" not in text and "hunter3" not in text and "sslmode=require" in text
    assert str(url) == text and "hunter2" not in repr(url)
    with pytest.raises(ConfigError) as err:
        parse_db_url("foo://bot:hunter2@db/x")
    assert "hunter2" not in str(err.value)


def test_password_in_a_db_flag_is_refused():
    cfg = load_config(None, env={}, flags={"db": "postgresql://bot:pw@db/x"})
    with pytest.raises(ConfigError, match="BOTCTL_DB_PASSWORD"):
        database_from_config(cfg)
    cfg = load_config(None, env={"BOTCTL_DB": "postgresql://bot@db/x", "BOTCTL_DB_PASSWORD": "pw"})
    assert database_from_config(cfg).url.password == "pw"


class FakeCredential:
    def __init__(self):
        self.scopes = []

    def get_token(self, scope):
        self.scopes.append(scope)
        return type("Token", (), {"token": "eyJ.fake.token"})()


def test_mssql_token_auth_passes_the_token_before_connect_without_uid_pwd():
    cred = FakeCredential()
    seen = []
    conn_str, attrs = odbc_connect_args(
        parse_db_url("mssql://srv.database.windows.net/bot?auth=token"),
        ["FreeTDS", "ODBC Driver 18 for SQL Server"], lambda auth: seen.append(auth) or cred)
    assert seen == ["token"] and cred.scopes == ["https://database.windows.net/.default"]
    assert "DRIVER={ODBC Driver 18 for SQL Server}" in conn_str
    assert "UID" not in conn_str and "PWD" not in conn_str and "Encrypt=yes" in conn_str
    value = attrs[SQL_COPT_SS_ACCESS_TOKEN]
    (length,) = struct.unpack("<I", value[:4])
    assert value[4:].decode("utf-16-le") == "eyJ.fake.token" and length == len(value) - 4
    assert value == azure_token_struct("eyJ.fake.token")


def test_mssql_msi_and_password_and_freetds():
    _, attrs = odbc_connect_args(parse_db_url("mssql://srv/bot?auth=msi"), ["ODBC Driver 18 for SQL Server"],
                                 lambda auth: FakeCredential() if auth == "msi" else None)
    assert SQL_COPT_SS_ACCESS_TOKEN in attrs
    url = parse_db_url("mssql://sa@srv:1433/bot?auth=password").with_password("p;w}d")
    conn_str, attrs = odbc_connect_args(url, ["FreeTDS"])
    assert attrs == {} and "DRIVER={FreeTDS}" in conn_str and "PWD={p;w}}d}" in conn_str
    assert "TDS_Version=7.4" in conn_str and "PORT=1433" in conn_str
    with pytest.raises(ConfigError, match="needs user"):
        odbc_connect_args(parse_db_url("mssql://srv/bot?auth=password"), ["FreeTDS"])


def test_driver_choice():
    assert choose_driver(["FreeTDS", "ODBC Driver 17 for SQL Server"], ("ODBC Driver 18 for SQL Server",
                         "ODBC Driver 17 for SQL Server", "FreeTDS"), None) == "ODBC Driver 17 for SQL Server"
    with pytest.raises(ConfigError, match="no ODBC driver"):
        choose_driver([], ("ODBC Driver 18 for SQL Server",), None)
    with pytest.raises(ConfigError, match="not installed"):
        choose_driver(["FreeTDS"], ("FreeTDS",), "ODBC Driver 18 for SQL Server")


def test_supervisors_are_phones_or_bsuids_and_a_bad_entry_is_named_without_its_value():
    from bot_core.asgi import settings_from_config

    cfg = load_config(None, env={"BOTCTL_SUPERVISORS": "5215550001111, US.ENT.118157992128"})
    assert cfg.get("supervisors") == ("5215550001111", "US.ENT.118157992128")
    assert settings_from_config(cfg, "s", "t").supervisors == frozenset(cfg.get("supervisors"))
    assert load_config(None, env={}).get("supervisors") == ()
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"BOTCTL_SUPERVISORS": "5215550001111,+52 1 555 000 2222"})
    assert "1 of 2 entries" in str(err.value) and "555" not in str(err.value)
