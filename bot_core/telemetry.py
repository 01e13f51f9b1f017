"""Every telemetry event the bot writes, by name, and where the records go.

Each event is one log record on the ``botctl.events`` logger whose ``extra``
holds ``event_name`` and the event's properties. Through
azure-monitor-opentelemetry those attributes become ``customDimensions`` in
Application Insights ``traces``; locally :class:`JsonlSink` writes the same
records as JSON lines shaped like App Insights rows, so the stored KQL queries
read both the same way.

Phone numbers never appear raw: :meth:`Telemetry.phone_hash` gives a keyed
hash that is logged as ``telefono_hash`` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, TextIO

LOGGER_NAME = "botctl.events"


@dataclass(frozen=True)
class EventSpec:
    name: str
    level: int
    properties: tuple[str, ...]
    # A str.format template over the properties. It keeps the markers that
    # existing dashboards search for, but queries filter on event_name.
    message: str


def _spec(name: str, level: int, properties: str, message: str) -> EventSpec:
    return EventSpec(name, level, tuple(properties.split()), message)


W, I, E = logging.WARNING, logging.INFO, logging.ERROR

EVENTS: dict[str, EventSpec] = {
    s.name: s
    for s in (
        _spec("concurrency.retry", W, "operation attempt max_attempts delay_ms",
              "[ConcurrencyRetry] Intento {attempt}/{max_attempts} falló, reintentando en {delay_ms}ms"),
        _spec("concurrency.conflict", W, "operation expected_version",
              "ConcurrencyError: {operation} esperaba Version={expected_version}"),
        _spec("concurrency.exhausted", E, "operation attempts",
              "ConcurrencyError: {operation} agotó {attempts} intentos; queda para el barrido"),
        _spec("ai.timeout", W, "operation timeout_ms provider",
              "[Timeout] {operation} excedió {timeout_ms}ms, usando fallback"),
        _spec("ai.error", W, "operation provider error_type",
              "[AIError] {operation} falló en {provider} ({error_type}), usando fallback"),
        _spec("breaker.transition", W, "breaker from_state to_state failures",
              "[CircuitBreaker] State changed: {from_state} -> {to_state}"),
        _spec("breaker.rejected", I, "breaker",
              "[CircuitBreaker] rejected: {breaker} está abierto"),
        _spec("dedup.duplicate", I, "message_id retry_count",
              "Mensaje duplicado detectado (MERGE): {message_id}, reintento #{retry_count}"),
        _spec("message.processed", I, "message_id message_type state_from state_to duration_ms",
              "Mensaje procesado: {message_id} {state_from} -> {state_to} en {duration_ms}ms"),
        _spec("message.deferred", W, "message_id reason",
              "Mensaje diferido: {message_id} ({reason})"),
        _spec("message.failed", E, "message_id error_type",
              "Mensaje no procesado: {message_id} ({error_type}); se reintentará"),
        _spec("operation.degraded", W, "operation error_type",
              "[Degraded] {operation} falló ({error_type}); el procesamiento continúa"),
        _spec("report.created", I, "ticket report_type",
              "Reporte creado: {ticket} ({report_type})"),
        _spec("outbox.sent", I, "outbox_id attempt error_code",
              "Mensaje saliente enviado: {outbox_id} (intento {attempt})"),
        _spec("outbox.failed", W, "outbox_id attempt error_code",
              "Mensaje saliente falló: {outbox_id} (intento {attempt}, código {error_code})"),
        _spec("whatsapp.token_expired", E, "error_code",
              "[Alert] El token de WhatsApp expiró o fue revocado (código {error_code})"),
        _spec("webhook.request", I, "name url resultCode success duration messages duplicates",
              "{name} {resultCode} en {duration}ms"),
    )
}

# LogRecord's own attributes: an extra with one of these names makes logging raise.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Python level -> App Insights severityLevel.
SEVERITY = {logging.DEBUG: 0, logging.INFO: 1, logging.WARNING: 2, logging.ERROR: 3, logging.CRITICAL: 4}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Telemetry:
    """Emits catalogued events. No global state: the app factory builds one."""

    def __init__(self, hash_key: bytes, logger: logging.Logger | None = None,
                 role: str = "botctl"):
        self._hash_key = hash_key
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.role = role

    def phone_hash(self, telefono: str) -> str:
        return hmac.new(self._hash_key, telefono.encode(), hashlib.sha256).hexdigest()[:16]

    def emit(self, event_name: str, *, telefono: str | None = None,
             operation_id: str | None = None, **properties: Any) -> None:
        spec = EVENTS[event_name]
        missing = [p for p in spec.properties if p not in properties]
        if missing:
            raise ValueError(f"{event_name} lacks properties {missing}")
        dims: dict[str, Any] = {"event_name": event_name}
        if telefono is not None:
            dims["telefono_hash"] = self.phone_hash(telefono)
        for key, value in properties.items():
            dims[key] = value if isinstance(value, (int, float, str)) else str(value)
        extra = {"custom_dimensions": dims, "operation_id": operation_id or "",
                 "cloud_role": self.role}
        # Flat attributes too: the OpenTelemetry handler turns them into customDimensions
        # (custom_dimensions keeps every key, including those LogRecord reserves, like `name`).
        extra.update({k: v for k, v in dims.items() if k not in _RESERVED})
        # No exc_info, ever: handled errors must stay in `traces`, not `exceptions`.
        self.logger.log(spec.level, spec.message.format(**properties), extra=extra)

    def request(self, *, name: str, url: str, result_code: int, duration_ms: float,
                operation_id: str, messages: int = 0, duplicates: int = 0) -> None:
        self.emit("webhook.request", operation_id=operation_id, name=name, url=url,
                  resultCode=result_code, success=result_code < 400,
                  duration=round(duration_ms, 3), messages=messages, duplicates=duplicates)


class JsonlSink(logging.Handler):
    """Writes event records as JSON lines shaped like App Insights rows.

    ``webhook.request`` records become ``requests`` rows (itemType "request");
    every other event a ``traces`` row (itemType "trace"). As in App Insights,
    customDimensions values are strings.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], datetime] = _utcnow, flush_every_s: float = 0.5):
        super().__init__(level=logging.DEBUG)
        self._stream = stream
        self._clock = clock
        self._write_lock = threading.Lock()
        # A flush per line is a syscall per event; App Insights batches too. Lines
        # reach the file within ``flush_every_s`` (and at close).
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()

    @classmethod
    def to_file(cls, path: str) -> "JsonlSink":
        return cls(open(path, "a", encoding="utf-8", buffering=1 << 16))

    def emit(self, record: logging.LogRecord) -> None:
        dims = getattr(record, "custom_dimensions", None)
        if dims is None:
            return
        try:
            self._stream_write(json.dumps(self.row(record, dims), ensure_ascii=False))
        except Exception:  # a broken sink must never break message processing
            self.handleError(record)

    def row(self, record: logging.LogRecord, dims: dict[str, Any]) -> dict[str, Any]:
        ts = self._clock().isoformat().replace("+00:00", "Z")
        common = {
            "timestamp": ts,
            "itemCount": 1,
            "operation_Id": getattr(record, "operation_id", "") or "",
            "cloud_RoleName": getattr(record, "cloud_role", ""),
            "customDimensions": {k: _dimension(v) for k, v in dims.items()},
        }
        if dims.get("event_name") == "webhook.request":
            return {
                "itemType": "request",
                "id": f"{random.getrandbits(64):016x}",
                "name": dims["name"],
                "url": dims["url"],
                "resultCode": str(dims["resultCode"]),
                "success": bool(dims["success"]),
                "duration": float(dims["duration"]),
                **common,
            }
        return {
            "itemType": "trace",
            "message": record.getMessage(),
            "severityLevel": SEVERITY.get(record.levelno, 1),
            **common,
        }

    def _stream_write(self, line: str) -> None:
        with self._write_lock:
            self._stream.write(line + "\n")
            now = time.monotonic()
            if now - self._last_flush >= self._flush_every_s:
                self._stream.flush()
                self._last_flush = now

    def flush(self) -> None:
        with self._write_lock:
            self._stream.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        try:
            self._stream.flush()
        finally:
            super().close()


def _dimension(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
