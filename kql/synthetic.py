"""Telemetry of a known scenario, written through the bot's own emitters.

Tests and ``bench/metrics_local.py`` need local telemetry whose counts they
know. Rather than hand-writing rows, :func:`write_scenario` emits the events
with :class:`bot_core.telemetry.Telemetry` into a
:class:`bot_core.telemetry.JsonlSink`, exactly as ``botctl serve`` does, with
a clock that steps forward one ``spacing`` per record.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, TextIO

from bot_core.telemetry import JsonlSink, Telemetry

_loggers = itertools.count()


@dataclass
class Scenario:
    """What happened. Every count here is what the stored queries must report."""

    retries: int = 0
    #: (phone, number of conflicts on it)
    conflicts: list[tuple[str, int]] = field(default_factory=list)
    #: operation -> number of AI timeouts
    timeouts: dict[str, int] = field(default_factory=dict)
    #: retry_count -> number of duplicates seen with it
    duplicates: dict[int, int] = field(default_factory=dict)
    #: (from_state, to_state) in order
    transitions: list[tuple[str, str]] = field(default_factory=list)
    #: (result code, duration ms) per webhook request
    requests: list[tuple[int, float]] = field(default_factory=list)
    #: unrelated events, so that queries must filter on event_name
    noise: int = 0


class SteppingClock:
    """Returns *start*, then *start + step*, …: one tick per record written."""

    def __init__(self, start: datetime, step: timedelta):
        self.now, self.step = start - step, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def telemetry_to(stream: TextIO, clock: Callable[[], datetime]) -> tuple[Telemetry, JsonlSink]:
    """A Telemetry whose records go to *stream* only (a private logger, not propagated)."""
    logger = logging.getLogger(f"botctl.events.synthetic.{next(_loggers)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    sink = JsonlSink(stream, clock=clock)
    logger.addHandler(sink)
    return Telemetry(hash_key=b"synthetic", logger=logger), sink


def events(telemetry: Telemetry, scenario: Scenario) -> Iterator[None]:
    """Emit the scenario's events one at a time (a generator, so callers can interleave)."""
    for attempt in range(scenario.retries):
        telemetry.emit("concurrency.retry", telefono="+5215550000001", operation="save_session",
                       attempt=attempt % 3 + 1, max_attempts=3, delay_ms=50 * 2 ** (attempt % 3))
        yield
    for phone, count in scenario.conflicts:
        for version in range(count):
            telemetry.emit("concurrency.conflict", telefono=phone, operation="save_session",
                           expected_version=version)
            yield
    for operation, count in scenario.timeouts.items():
        for _ in range(count):
            telemetry.emit("ai.timeout", operation=operation, timeout_ms=4000, provider="rules")
            yield
    for retry_count, count in scenario.duplicates.items():
        for n in range(count):
            telemetry.emit("dedup.duplicate", message_id=f"wamid.{retry_count}.{n}", retry_count=retry_count)
            yield
    for failures, (from_state, to_state) in enumerate(scenario.transitions):
        telemetry.emit("breaker.transition", breaker="ai", from_state=from_state, to_state=to_state,
                       failures=failures)
        yield
    for n, (code, duration) in enumerate(scenario.requests):
        telemetry.request(name="POST /webhook", url="/webhook", result_code=code, duration_ms=duration,
                          operation_id=f"op{n}", messages=1)
        yield
    for n in range(scenario.noise):
        # Its message carries every marker the release note's queries searched for.
        telemetry.emit("operation.degraded", operation="[ConcurrencyRetry] [Timeout] ConcurrencyError",
                       error_type=f"noise{n}")
        yield


def write_scenario(path: str | Path, scenario: Scenario, start: datetime,
                   spacing: timedelta = timedelta(seconds=1)) -> datetime:
    """Write *scenario* to *path* (appending); returns the timestamp of the last record."""
    clock = SteppingClock(start, spacing)
    with open(path, "a", encoding="utf-8") as stream:
        telemetry, sink = telemetry_to(stream, clock)
        try:
            for _ in events(telemetry, scenario):
                pass
        finally:
            telemetry.logger.removeHandler(sink)
            sink.close()
    return clock.now
