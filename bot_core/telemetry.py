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
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TextIO

from bot_core.files import open_private_append

LOGGER_NAME = "botctl.events"


@dataclass(frozen=True)
class EventSpec:
    """One event of the catalog: its level, required properties and message."""

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
        _spec("message.invalid", W, "reason",
              "Mensaje inválido omitido ({reason})"),
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


REQUEST_EVENT = "webhook.request"
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder, not one per event
_HASH_CACHE_SIZE = 4096
HASH_HEX_CHARS = 32  # telefono_hash: 128 bits (docs/kql.md)


class Telemetry:
    """Emits catalogued events. No global state: the app factory builds one."""

    def __init__(self, hash_key: bytes, logger: logging.Logger | None = None,
                 role: str = "botctl"):
        self._hash_key = hash_key
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.role = role
        self._hashes: dict[str, str] = {}  # telefono -> telefono_hash, bounded

    def phone_hash(self, telefono: str) -> str:
        """HMAC-SHA256 under ``hash_key`` (its own secret, not the app secret), 128 bits in hex."""
        digest = hmac.new(self._hash_key, telefono.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return digest.hexdigest()[:HASH_HEX_CHARS]

    def emit(self, event_name: str, *, telefono: str | None = None,
             operation_id: str | None = None, **properties: Any) -> None:
        spec = EVENTS[event_name]
        for prop in spec.properties:
            if prop not in properties:
                missing = [p for p in spec.properties if p not in properties]
                raise ValueError(f"{event_name} lacks properties {missing}")
        logger = self.logger
        if not logger.isEnabledFor(spec.level):
            return
        dims: dict[str, Any] = {"event_name": event_name}
        if telefono is not None:
            dims["telefono_hash"] = self._phone_hash_cached(telefono)
        for key, value in properties.items():
            dims[key] = value if isinstance(value, (int, float, str)) else str(value)
        sinks = self._direct_sinks(spec.level)
        if sinks is not None:
            # Only JSON-lines sinks listen: write the row, no LogRecord, no handler chain.
            message = None if event_name == REQUEST_EVENT else spec.message.format(**properties)
            for sink in sinks:
                sink.write_event(spec.level, message, dims, operation_id or "", self.role)
            return
        extra = {"custom_dimensions": dims, "operation_id": operation_id or "",
                 "cloud_role": self.role}
        # Flat attributes too: the OpenTelemetry handler turns them into customDimensions
        # (custom_dimensions keeps every key, including those LogRecord reserves, like `name`).
        extra.update({k: v for k, v in dims.items() if k not in _RESERVED})
        # No exc_info, ever: handled errors must stay in `traces`, not `exceptions`.
        logger.log(spec.level, spec.message.format(**properties), extra=extra)

    def _phone_hash_cached(self, telefono: str) -> str:
        cached = self._hashes.get(telefono)
        if cached is None:
            if len(self._hashes) >= _HASH_CACHE_SIZE:
                self._hashes.clear()
            cached = self._hashes[telefono] = self.phone_hash(telefono)
        return cached

    def _direct_sinks(self, level: int) -> list["JsonlSink"] | None:
        """The JSON-lines sinks an event of ``level`` reaches, when nothing else needs a LogRecord.

        None when any other handler (App Insights, a test capture, a console) would see
        the record, when a filter is set, or when no handler at all would (logging's
        last-resort handler then decides): those go through ``logging`` as before.
        """
        logger: logging.Logger | None = self.logger
        if self.logger.filters:
            return None
        sinks: list[JsonlSink] = []
        while logger is not None:
            for handler in logger.handlers:
                if level < handler.level:
                    continue
                if type(handler) is not JsonlSink or handler.filters:
                    return None
                sinks.append(handler)
            if not logger.propagate:
                break
            logger = logger.parent
        return sinks or None

    def request(self, *, name: str, url: str, result_code: int, duration_ms: float,
                operation_id: str, messages: int = 0, duplicates: int = 0, synthetic: bool = False) -> None:
        extra = {"synthetic": 1} if synthetic else {}
        self.emit(REQUEST_EVENT, operation_id=operation_id, name=name, url=url,
                  resultCode=result_code, success=result_code < 400,
                  duration=round(duration_ms, 3), messages=messages, duplicates=duplicates, **extra)


class JsonlSink(logging.Handler):
    """Writes event records as JSON lines shaped like App Insights rows.

    ``webhook.request`` records become ``requests`` rows (itemType "request");
    every other event a ``traces`` row (itemType "trace"). As in App Insights,
    customDimensions values are strings.

    :class:`Telemetry` hands events straight to :meth:`write_event` when this
    sink is the only listener; records that come through ``logging`` (another
    handler listens too) are written by :meth:`emit`, the same way.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], datetime] | None = None, flush_every_s: float = 0.5):
        super().__init__(level=logging.DEBUG)
        self._stream = stream
        self._clock = clock  # None: the wall clock (formatted without a datetime per event)
        self._second = -1
        self._second_text = ""
        self._write_lock = threading.Lock()
        # A flush per line is a syscall per event; App Insights batches too. Lines
        # reach the file within ``flush_every_s`` (and at close).
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        # The line after which no other event comes must still reach the file: a write that
        # leaves data buffered arms one timer that flushes it (an idle server, a tailing operator).
        self._pending_flush: threading.Timer | None = None

    @classmethod
    def to_file(cls, path: str) -> "JsonlSink":
        return cls(open_private_append(path, buffering=1 << 16))

    def emit(self, record: logging.LogRecord) -> None:
        dims = getattr(record, "custom_dimensions", None)
        if dims is None:
            return
        try:
            message = None if dims.get("event_name") == REQUEST_EVENT else record.getMessage()
            self.write_event(record.levelno, message, dims, getattr(record, "operation_id", "") or "",
                             getattr(record, "cloud_role", ""))
        except Exception:  # a broken sink must never break message processing
            self.handleError(record)

    def write_event(self, level: int, message: str | None, dims: dict[str, Any], operation_id: str,
                    role: str) -> None:
        try:
            self._stream_write(_ENCODER.encode(self.row(level, message, dims, operation_id, role)))
        except Exception as exc:  # a broken sink must never break message processing
            if logging.raiseExceptions:  # as logging.Handler.handleError does: say so on stderr
                sys.stderr.write(f"--- telemetry sink error: {type(exc).__name__}: {exc}\n")

    def _timestamp(self) -> str:
        if self._clock is not None:
            return self._clock().isoformat().replace("+00:00", "Z")
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((now - second) * 1e6):06d}Z"

    def row(self, level: int, message: str | None, dims: dict[str, Any], operation_id: str = "",
            role: str = "") -> dict[str, Any]:
        common = {
            "timestamp": self._timestamp(),
            "itemCount": 1,
            "operation_Id": operation_id,
            "cloud_RoleName": role,
            "customDimensions": {k: v if type(v) is str else _dimension(v) for k, v in dims.items()},
        }
        if dims.get("event_name") == REQUEST_EVENT:
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
            "message": message,
            "severityLevel": SEVERITY.get(level, 1),
            **common,
        }

    def _stream_write(self, line: str) -> None:
        with self._write_lock:
            self._stream.write(line + "\n")
            now = time.monotonic()
            if now - self._last_flush >= self._flush_every_s:
                self._stream.flush()
                self._last_flush = now
            elif self._pending_flush is None:
                self._pending_flush = threading.Timer(self._flush_every_s, self._flush_pending)
                self._pending_flush.daemon = True
                self._pending_flush.start()

    def _flush_pending(self) -> None:
        with self._write_lock:
            self._pending_flush = None
            if not self._stream.closed:
                self._stream.flush()
                self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._write_lock:
            self._stream.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        with self._write_lock:
            if self._pending_flush is not None:
                self._pending_flush.cancel()
                self._pending_flush = None
        try:
            self._stream.flush()
        finally:
            super().close()


def _dimension(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
