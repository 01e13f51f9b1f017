"""The webhook's two secrets, and the rule that only loopback may run without them."""

from __future__ import annotations

import ipaddress

from bot_core.config import Config
from bot_core.errors import ConfigError

LOCAL_DEV_SECRET = "botctl-local-dev-secret"  # only ever accepted on a loopback address


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_secrets(config: Config, host: str | None = None) -> tuple[str, str]:
    """The app secret and verify token; only loopback may run without real ones."""
    secret, token = config.get("app_secret"), config.get("verify_token")
    if secret and token:
        return secret, token
    if host is not None and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without BOTCTL_APP_SECRET and BOTCTL_VERIFY_TOKEN")
    return secret or LOCAL_DEV_SECRET, token or LOCAL_DEV_SECRET
