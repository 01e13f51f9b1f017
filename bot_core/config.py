"""The one configuration loader: ``botctl.yaml`` < ``BOTCTL_*`` environment < flags.

Every setting is declared in :data:`FIELDS` with its type and default. Keys are
dotted (``ai.deadline_extract_ms``); YAML nests them (``ai: {deadline_extract_ms: 4000}``);
the environment spells them ``BOTCTL_AI_DEADLINE_EXTRACT_MS``.

Secrets come only from the environment or from a file named by ``<key>_file``
(in YAML or the environment): never from flags, never from YAML values, so
they never end up in shell history or in a committed file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from bot_core.errors import ConfigError


@dataclass(frozen=True)
class Field:
    """One configuration key: how its value is read, its default, whether it is a secret."""

    type: Callable[[Any], Any]
    default: Any = None
    secret: bool = False
    help: str = ""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _identifiers(value: Any) -> tuple[str, ...]:
    """Phones (digits) or business-scoped user IDs, as a YAML list or a comma-separated string."""
    from bot_core.identity import is_bsuid, is_phone

    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out = tuple(str(item).strip() for item in items if str(item).strip())
    bad = [item for item in out if not (is_phone(item) or is_bsuid(item))]
    if bad:  # never echo the entries: they are phone numbers
        raise ConfigError(f"supervisors: {len(bad)} of {len(out)} entries are neither a phone (digits) "
                          "nor a business-scoped user ID")
    return out


FIELDS: dict[str, Field] = {
    "db": Field(str, "sqlite:///botctl.db", help="database URL"),
    "db_password": Field(str, secret=True, help="password for mssql auth=password / postgresql"),
    "app_secret": Field(str, secret=True, help="Meta app secret (X-Hub-Signature-256)"),
    "verify_token": Field(str, secret=True, help="webhook verification token"),
    "whatsapp_token": Field(str, secret=True, help="Graph API bearer token"),
    "hash_key": Field(str, secret=True, help="key of telefono_hash, 16+ characters (required outside local development)"),
    "telemetry_file": Field(str, "botctl-telemetry.jsonl", help="local JSON-lines telemetry"),
    "session_idle_minutes": Field(int, 30),
    "supervisors": Field(_identifiers, (), help="phones or BSUIDs that may read the status of every ticket"),
    "mode": Field(str, "inline"),
    "inline_deadline_ms": Field(int, 8000),
    "lease_seconds": Field(int, 30),
    # How often serve looks for work no commit of its own announced (other processes,
    # expired leases, due retries it did not schedule); unset: every lease_seconds.
    "sweep_interval_seconds": Field(float, help="inbox sweep interval (default: lease_seconds)"),
    "outbox_poll_seconds": Field(float, help="outbox pick-up interval (default: lease_seconds)"),
    # Azure Functions: the timer that runs one round of sweeping and outbox retries.
    "smoke.phone": Field(str, help="the test identity botctl smoke sends as: answered, no reports, "
                                   "telemetry marked synthetic"),
    "timer_schedule": Field(str, "*/30 * * * * *", help="NCRONTAB schedule of the Functions timer"),
    "timer_budget_seconds": Field(float, 20.0, help="time budget of one timer round"),
    "header_timeout_seconds": Field(float, 10.0, help="serve: a connection's request headers must "
                                    "arrive within this (slowloris), else it is closed"),
    "max_header_bytes": Field(int, 32768, help="serve: larger request headers close the connection"),
    "body_timeout_seconds": Field(float, 10.0, help="a request body not received within this: 408"),
    "max_connections": Field(int, 256, help="serve: connections + requests in flight per worker; "
                             "past it uvicorn answers 503"),
    "ai.provider": Field(str, "rules"),
    "ai.base_url": Field(str),
    "ai.model": Field(str),
    "ai.api_key": Field(str, secret=True),
    "ai.deadline_extract_ms": Field(int, 4000),
    "ai.deadline_interpret_ms": Field(int, 3000),
    "ai.deadline_detect_ms": Field(int, 3000),
    "ai.breaker_failures": Field(int, 5),
    "ai.breaker_reset_seconds": Field(float, 30.0),
    "ai.breaker_half_open_successes": Field(int, 2),
    "ai.breaker_half_open_probes": Field(int, 1),
    "whatsapp.base_url": Field(str, "https://graph.facebook.com"),
    "whatsapp.api_version": Field(str, "v21.0"),
    "whatsapp.phone_number_id": Field(str),
    "alerts.error_rate_percent": Field(float, 2.0),
    "alerts.p95_latency_ms": Field(float, 3000.0),
    "alerts.concurrency_retries_per_hour": Field(int, 20),
    "no_color": Field(_bool, False),
}

ENV_PREFIX = "BOTCTL_"


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", "_")


class Config:
    """Resolved settings. Read with ``config.get(key)`` or ``config[key]``."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]):
        self._values = dict(values)
        self._sources = dict(sources)

    def get(self, key: str) -> Any:
        if key not in FIELDS:
            raise KeyError(key)
        return self._values.get(key, FIELDS[key].default)

    __getitem__ = get

    def source(self, key: str) -> str:
        return self._sources.get(key, "default")

    def with_overrides(self, **flags: Any) -> "Config":
        values, sources = dict(self._values), dict(self._sources)
        for key, value in flags.items():
            key = key.replace("__", ".")
            if value is None:
                continue
            _check_known(key, "flag")
            if FIELDS[key].secret:
                raise ConfigError(f"{key} is a secret: set {env_name(key)} or {key}_file, not a flag")
            values[key] = _convert(key, value, "flag")
            sources[key] = "flag"
        return Config(values, sources)


def _check_known(key: str, where: str) -> None:
    if key not in FIELDS:
        raise ConfigError(f"unknown setting {key!r} in {where}")


def _convert(key: str, value: Any, where: str) -> Any:
    try:
        return FIELDS[key].type(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} in {where}: cannot read {value!r} as {FIELDS[key].type.__name__}") from None


MAX_SETTINGS = 1000  # a settings file is a few dozen keys; an alias bomb is millions
MAX_SECRET_FILE_BYTES = 64 * 1024
MAX_CONFIG_FILE_BYTES = 1024 * 1024


class _RecursiveAlias(Exception):
    pass


def _flatten(data: Mapping[str, Any], prefix: str = "", _inside: frozenset[int] = frozenset(),
             _count: list[int] | None = None) -> dict[str, Any]:
    """Dotted keys; raises _RecursiveAlias for a mapping inside itself (a YAML alias cycle)
    or more than MAX_SETTINGS leaves (aliases that multiply)."""
    count = _count if _count is not None else [0]
    if id(data) in _inside:
        raise _RecursiveAlias()
    inside = _inside | {id(data)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, full + ".", inside, count))
        else:
            count[0] += 1
            if count[0] > MAX_SETTINGS:
                raise _RecursiveAlias()
            out[full] = value
    return out


def _read_text_file(path: str | os.PathLike, what: str, limit: int) -> str:
    """A regular file of UTF-8 text, at most ``limit`` bytes; anything else (a FIFO or device,
    which could block or never end; binary) is a ConfigError. Opened non-blocking, checked
    on the open descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{what} {path} is larger than {limit // 1024} KiB")
        data = os.read(fd, limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    if "\x00" in text:
        raise ConfigError(f"{what} {path} is binary")
    return text


def _read_secret_file(path: str, key: str) -> str:
    text = _read_text_file(path, f"{key}_file", MAX_SECRET_FILE_BYTES).strip()
    if not text:
        raise ConfigError(f"{key}_file {path} is empty")
    return text


def load_config(path: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None,
                flags: Mapping[str, Any] | None = None) -> Config:
    """Resolve settings. ``path`` defaults to ``./botctl.yaml`` when it exists."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    explicit = path is not None or env.get("BOTCTL_CONFIG")
    path = Path(path or env.get("BOTCTL_CONFIG") or "botctl.yaml")
    if path.exists():
        values.update(_load_yaml(path, sources))
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")

    for key, field in FIELDS.items():
        name = env_name(key)
        if name in env and env[name] != "":
            values[key] = _convert(key, env[name], name)
            sources[key] = "env"
        if field.secret and key not in values:
            file_path = env.get(name + "_FILE") or values.pop(f"{key}_file", None)
            if file_path:
                values[key] = _read_secret_file(file_path, key)
                sources[key] = "file"
        values.pop(f"{key}_file", None)
    config = Config(values, sources)
    return config.with_overrides(**flags) if flags else config


def _load_yaml(path: Path, sources: dict[str, str]) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(_read_text_file(path, "config file", MAX_CONFIG_FILE_BYTES)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings")
    try:
        flat = _flatten(data)
    except _RecursiveAlias:
        raise ConfigError(f"{path}: recursive or exploding YAML aliases") from None
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.endswith("_file") and key[: -len("_file")] in FIELDS and FIELDS[key[:-5]].secret:
            out[key] = str(value)
            continue
        _check_known(key, str(path))
        if FIELDS[key].secret:
            raise ConfigError(
                f"{path}: {key} is a secret; set {env_name(key)} or {key}_file instead")
        out[key] = _convert(key, value, str(path))
        if key == "db" and _url_has_password(out[key]):
            raise ConfigError(f"{path}: the db URL carries a password; set BOTCTL_DB_PASSWORD "
                              "(or db_password_file) instead")
        sources[key] = "file"
    return out


def _url_has_password(url: str) -> bool:
    """user:password@ in the authority, or a password/pwd parameter (ODBC style)."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        if parts.password:
            return True
    except ValueError:
        return False
    keys = {k.lower() for k, _ in parse_qsl(parts.query)} | {
        p.split("=", 1)[0].strip().lower() for p in url.split(";") if "=" in p}
    return bool(keys & {"password", "pwd"})
