"""Telemetry's JSON-lines path: the same rows with or without a LogRecord, and a record only when needed."""

import io
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from bot_core.files import open_private_append
from bot_core.telemetry import JsonlSink, Telemetry
from kql.synthetic import SteppingClock
from tests.conftest import EventCapture

START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"tests.telemetry_sink.{name}")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def _emit_all(telemetry: Telemetry) -> None:
    telemetry.emit("concurrency.retry", telefono="+5215550000001", operation="save_session", attempt=1,
                   max_attempts=3, delay_ms=52)
    telemetry.emit("dedup.duplicate", telefono="+5215550000001", message_id="wamid.ñ", retry_count=2)
    telemetry.emit("breaker.transition", breaker="ai", from_state="HALF_OPEN", to_state="OPEN", failures=3)
    telemetry.request(name="POST /webhook", url="/webhook", result_code=503, duration_ms=12.5, operation_id="op1",
                      messages=2, duplicates=1)


@pytest.fixture
def record_count():
    """Counts the LogRecords logging creates (its own record-factory seam)."""
    made = []
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(factory)
    yield made
    logging.setLogRecordFactory(previous)


def test_rows_are_the_same_with_and_without_a_log_record(record_count):
    direct_out, logged_out = io.StringIO(), io.StringIO()
    direct = _logger("direct")
    direct.addHandler(JsonlSink(direct_out, clock=SteppingClock(START, timedelta(seconds=1))))
    logged = _logger("logged")
    logged.addHandler(JsonlSink(logged_out, clock=SteppingClock(START, timedelta(seconds=1))))
    capture = EventCapture()
    logged.addHandler(capture)  # another listener: events must go through logging

    _emit_all(Telemetry(b"k", direct))
    assert record_count == []  # the sink alone: no LogRecord at all
    _emit_all(Telemetry(b"k", logged))
    assert len(capture.records) == 4

    def rows(out):
        return [{k: v for k, v in json.loads(line).items() if k != "id"} for line in out.getvalue().splitlines()]

    assert rows(direct_out) == rows(logged_out)
    trace, _, transition, request = rows(direct_out)
    assert trace["message"] == "[ConcurrencyRetry] Intento 1/3 falló, reintentando en 52ms"
    assert trace["customDimensions"]["delay_ms"] == "52" and trace["severityLevel"] == 2
    assert "+5215550000001" not in direct_out.getvalue()
    assert transition["message"] == "[CircuitBreaker] State changed: HALF_OPEN -> OPEN"
    assert request["itemType"] == "request" and request["resultCode"] == "503" and request["success"] is False
    assert request["timestamp"] == "2024-05-01T10:00:03Z" and request["operation_Id"] == "op1"


def test_the_wall_clock_timestamp_is_utc_iso_with_microseconds():
    out = io.StringIO()
    logger = _logger("wall")
    logger.addHandler(JsonlSink(out))
    before = datetime.now(timezone.utc)
    _emit_all(Telemetry(b"k", logger))
    after = datetime.now(timezone.utc)
    for line in out.getvalue().splitlines():
        stamp = json.loads(line)["timestamp"]
        assert stamp.endswith("Z") and len(stamp) == len("2024-05-01T10:00:03.123456Z")
        parsed = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=timezone.utc)
        assert before - timedelta(milliseconds=1) <= parsed <= after + timedelta(milliseconds=1)


def test_a_handler_that_wants_the_level_gets_a_record(record_count):
    out = io.StringIO()
    logger = _logger("levels")
    logger.addHandler(JsonlSink(out))
    warnings_only = EventCapture()
    warnings_only.setLevel(logging.WARNING)
    logger.addHandler(warnings_only)
    telemetry = Telemetry(b"k", logger)
    telemetry.emit("dedup.duplicate", telefono="1", message_id="w", retry_count=1)  # INFO: sink only
    assert record_count == [] and warnings_only.records == []
    telemetry.emit("concurrency.exhausted", telefono="1", operation="commit", attempts=3)  # ERROR
    assert [r.custom_dimensions["event_name"] for r in warnings_only.records] == ["concurrency.exhausted"]
    assert len(out.getvalue().splitlines()) == 2  # the sink saw both, once each


def test_a_filter_or_a_parent_handler_keeps_the_logging_path(record_count):
    parent = _logger("parent")
    parent_capture = EventCapture()
    parent.addHandler(parent_capture)
    child = logging.getLogger("tests.telemetry_sink.parent.child")
    child.handlers.clear()
    child.propagate = True
    out = io.StringIO()
    child.addHandler(JsonlSink(out))
    Telemetry(b"k", child).emit("dedup.duplicate", telefono="1", message_id="w", retry_count=1)
    assert len(parent_capture.records) == 1 and len(out.getvalue().splitlines()) == 1

    alone = _logger("filtered")
    alone.addHandler(JsonlSink(io.StringIO()))
    alone.addFilter(lambda record: False)  # a filter decides per record: it needs one
    Telemetry(b"k", alone).emit("dedup.duplicate", telefono="1", message_id="w", retry_count=1)
    assert len(record_count) == 2


def test_a_disabled_level_writes_nothing_and_missing_properties_still_raise():
    out = io.StringIO()
    logger = _logger("disabled")
    logger.setLevel(logging.WARNING)
    logger.addHandler(JsonlSink(out))
    telemetry = Telemetry(b"k", logger)
    telemetry.emit("dedup.duplicate", telefono="1", message_id="w", retry_count=1)
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="retry_count"):
        telemetry.emit("dedup.duplicate", telefono="1", message_id="w")


def test_a_broken_stream_does_not_break_the_caller(capsys):
    class Broken(io.StringIO):
        def write(self, _text):
            raise OSError("disk full")

    logger = _logger("broken")
    logger.addHandler(JsonlSink(Broken()))
    Telemetry(b"k", logger).emit("dedup.duplicate", telefono="1", message_id="w", retry_count=1)
    assert "disk full" in capsys.readouterr().err


def test_the_phone_hash_cache_gives_the_keyed_hash():
    telemetry = Telemetry(b"key", _logger("hash"))
    for _ in range(2):
        assert telemetry._phone_hash_cached("+5215550000001") == telemetry.phone_hash("+5215550000001")
    assert telemetry._phone_hash_cached("+5215550000002") != telemetry.phone_hash("+5215550000001")


def test_the_last_event_reaches_the_file_without_a_later_one(tmp_path):
    """An idle server's last line must not wait in the buffer for an event that never comes."""
    import time

    path = tmp_path / "t.jsonl"
    sink = JsonlSink(open_private_append(str(path), buffering=1 << 16), flush_every_s=0.05)
    logger = _logger("idle")
    logger.addHandler(sink)
    telemetry = Telemetry(b"k", logger)
    telemetry.emit("dedup.duplicate", telefono="1", message_id="w1", retry_count=1)  # buffered, timer armed
    telemetry.emit("dedup.duplicate", telefono="1", message_id="w2", retry_count=1)  # and no event after it
    deadline = time.monotonic() + 10
    while "w2" not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert [json.loads(line)["customDimensions"]["message_id"] for line in path.read_text().splitlines()] \
            == ["w1", "w2"]
    finally:
        sink.close()
