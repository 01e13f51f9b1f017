"""The webhook's two secrets, and the rule that only explicit local development runs without them.

Explicit local development is ``botctl serve`` on a loopback address given literally
(``127.0.0.1``, ``::1``; not a name, not ``''``, not ``0.0.0.0``) or ``botctl chat``'s
in-process server. Every other start (the uvicorn factory on its own, Azure Functions)
needs ``BOTCTL_APP_SECRET`` and ``BOTCTL_VERIFY_TOKEN`` and refuses the development
values. The verify token never falls back to the app secret.
"""

from __future__ import annotations

import ipaddress

from bot_core.config import Config
from bot_core.errors import ConfigError

LOCAL_DEV_SECRET = "botctl-local-dev-secret"  # only ever accepted on a literal loopback address
LOCAL_DEV_VERIFY_TOKEN = "botctl-local-dev-verify-token"
LOCAL_DEV_HASH_KEY = "botctl-local-dev-hash-key"
REQUIRED = "BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN"
MIN_HASH_KEY_CHARS = 16


def is_loopback(host: str | None) -> bool:
    """``host`` is a loopback IP address written literally (a name may resolve anywhere)."""
    if not host:
        return False  # '' binds every interface
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_secrets(config: Config, host: str | None = None) -> tuple[str, str]:
    """The app secret and verify token. ``host`` is the address a local-development start binds
    (None: not a local-development start); only a literal loopback one may run without them."""
    secret, token = config.get("app_secret"), config.get("verify_token")
    if is_loopback(host):
        return secret or LOCAL_DEV_SECRET, token or LOCAL_DEV_VERIFY_TOKEN
    where = f" on {host}" if host else " on '' (every interface)" if host == "" else ""
    if not (secret and token):
        raise ConfigError(f"refusing to serve{where} without {REQUIRED} "
                          "(only a literal loopback address may use the development secret)")
    if secret == LOCAL_DEV_SECRET or token in (LOCAL_DEV_SECRET, LOCAL_DEV_VERIFY_TOKEN):
        raise ConfigError(f"refusing to serve{where} with the local development secret: set real {REQUIRED}")
    return secret, token


def resolve_hash_key(config: Config, local_dev: bool) -> str:
    """The key of ``telefono_hash``: its own secret, so that neither holding the app secret
    reverses the hashes nor rotating it changes them. Required outside local development."""
    key = config.get("hash_key")
    if key and (local_dev or len(key) >= MIN_HASH_KEY_CHARS):
        return key
    if local_dev:
        return LOCAL_DEV_HASH_KEY
    if key:
        raise ConfigError(f"BOTCTL_HASH_KEY must be at least {MIN_HASH_KEY_CHARS} characters")
    raise ConfigError("refusing to serve without BOTCTL_HASH_KEY (the key of telefono_hash; "
                      "only a literal loopback address may use the development one)")
