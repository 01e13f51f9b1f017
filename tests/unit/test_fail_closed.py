"""Only an explicit local-development start may run without real secrets (docs/security.md)."""

from __future__ import annotations

import pytest

from bot_core.config import load_config
from bot_core.errors import ConfigError
from bot_core.secrets import (LOCAL_DEV_HASH_KEY, LOCAL_DEV_SECRET, LOCAL_DEV_VERIFY_TOKEN, is_loopback,
                              resolve_hash_key, resolve_secrets)
from bot_core.telemetry import Telemetry

BOTH = {"BOTCTL_APP_SECRET": "real-app-secret", "BOTCTL_VERIFY_TOKEN": "real-verify-token"}


@pytest.fixture(autouse=True)
def _no_yaml_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                           ("[::1]", True), ("", False), ("0.0.0.0", False), ("::", False),
                                           ("localhost", False), ("10.0.0.1", False), (None, False)])
def test_only_a_literal_loopback_address_is_local(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", [None, "", "0.0.0.0", "localhost", "10.1.2.3"])
@pytest.mark.parametrize("env", [{}, {"BOTCTL_APP_SECRET": "real-app-secret"},
                                 {"BOTCTL_VERIFY_TOKEN": "real-verify-token"}])
def test_no_other_start_runs_without_both_secrets(host, env):
    with pytest.raises(ConfigError, match="BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN") as caught:
        resolve_secrets(load_config(None, env=env), host)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("env", [{"BOTCTL_APP_SECRET": LOCAL_DEV_SECRET, "BOTCTL_VERIFY_TOKEN": "x"},
                                 {"BOTCTL_APP_SECRET": "x", "BOTCTL_VERIFY_TOKEN": LOCAL_DEV_SECRET},
                                 {"BOTCTL_APP_SECRET": "x", "BOTCTL_VERIFY_TOKEN": LOCAL_DEV_VERIFY_TOKEN}])
def test_the_development_secret_set_by_hand_is_refused_outside_loopback(env):
    with pytest.raises(ConfigError, match="local development secret"):
        resolve_secrets(load_config(None, env=env), None)


def test_loopback_may_use_the_development_secret_and_the_token_never_falls_back_to_the_secret():
    assert resolve_secrets(load_config(None, env={}), "127.0.0.1") == (LOCAL_DEV_SECRET, LOCAL_DEV_VERIFY_TOKEN)
    secret, token = resolve_secrets(load_config(None, env={"BOTCTL_APP_SECRET": "only-the-secret"}), "::1")
    assert secret == "only-the-secret" and token == LOCAL_DEV_VERIFY_TOKEN != secret
    assert resolve_secrets(load_config(None, env=BOTH), None) == ("real-app-secret", "real-verify-token")


def test_hash_key_is_required_outside_local_development():
    with pytest.raises(ConfigError, match="BOTCTL_HASH_KEY"):
        resolve_hash_key(load_config(None, env=BOTH), local_dev=False)
    with pytest.raises(ConfigError, match="at least 16"):
        resolve_hash_key(load_config(None, env={**BOTH, "BOTCTL_HASH_KEY": "short"}), local_dev=False)
    assert resolve_hash_key(load_config(None, env={"BOTCTL_HASH_KEY": "k" * 16}), False) == "k" * 16
    assert resolve_hash_key(load_config(None, env={}), local_dev=True) == LOCAL_DEV_HASH_KEY


def test_telefono_hash_is_128_bits_and_does_not_depend_on_the_app_secret():
    one, other = Telemetry(b"hash-key-number-1"), Telemetry(b"hash-key-number-2")
    digest = one.phone_hash("5215550001234")
    assert len(digest) == 32 and int(digest, 16) >= 0  # 128 bits of hex
    assert digest != other.phone_hash("5215550001234") and digest == one.phone_hash("5215550001234")
    assert len(one.phone_hash("\ud800")) == 32  # a phone that is not valid Unicode still hashes
