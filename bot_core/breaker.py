"""A small asyncio circuit breaker (phase-1 fix 1.4, done right).

CLOSED -> OPEN after ``failure_threshold`` consecutive failures. Consecutive
failures, not a rate over a window: the callers are a handful of AI and Graph
API endpoints at tens of calls per second, where "five in a row" reacts within
seconds and needs no window bookkeeping; a single success resets the count.

OPEN -> HALF_OPEN once ``reset_timeout_s`` has passed (checked when a call
arrives). HALF_OPEN lets at most ``half_open_max_calls`` probes run at once;
other calls fail fast with CircuitOpenError. ``success_threshold`` successful
probes close it; a failed probe resets the counters and re-opens it (the
release note's fix: its breaker kept counting from where it was).

Every transition starts a new period. A call's outcome counts only in the
period it started in: a slow probe from an earlier HALF_OPEN that answers
after the breaker re-opened and half-opened again neither closes the circuit
nor frees the new period's probe slot.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, TypeVar

from bot_core.telemetry import Telemetry

T = TypeVar("T")
CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"


class CircuitOpenError(Exception):
    """Rejected without calling: the circuit is open (never worth retrying right away)."""

    def __init__(self, name: str):
        super().__init__(f"circuit {name} is open")
        self.name = name


class CircuitBreaker:
    def __init__(self, name: str, telemetry: Telemetry | None = None, failure_threshold: int = 5,
                 reset_timeout_s: float = 30.0, success_threshold: int = 2, half_open_max_calls: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 is_failure: Callable[[BaseException], bool] = lambda exc: True):
        if failure_threshold < 1 or success_threshold < 1 or half_open_max_calls < 1 or reset_timeout_s < 0:
            raise ValueError("breaker thresholds must be >= 1 and the reset timeout >= 0")
        self.name = name
        self.telemetry = telemetry
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.success_threshold = success_threshold
        self.half_open_max_calls = half_open_max_calls
        self.clock = clock
        self.is_failure = is_failure
        self._state = CLOSED
        self.failures = 0
        self.successes = 0
        self.in_flight_probes = 0
        self.opened_at = 0.0
        self.period = 0
        self._listeners: list[Callable[[str, str], None]] = []

    @property
    def state(self) -> str:
        """The state as a caller arriving now would see it."""
        if self._state == OPEN and self.clock() - self.opened_at >= self.reset_timeout_s:
            return HALF_OPEN
        return self._state

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """``listener(from_state, to_state)`` on every transition."""
        self._listeners.append(listener)

    def _transition(self, to_state: str) -> None:
        from_state = self._state
        if from_state == to_state:
            return
        self._state = to_state
        self.period += 1
        if to_state == OPEN:
            self.opened_at = self.clock()
        if to_state == HALF_OPEN:
            self.in_flight_probes = 0
        if self.telemetry is not None:
            self.telemetry.emit("breaker.transition", breaker=self.name, from_state=from_state,
                                to_state=to_state, failures=self.failures)
        for listener in list(self._listeners):
            listener(from_state, to_state)

    def _admit(self) -> tuple[bool, int]:
        """Decide whether a call may run now: (is it a half-open probe, its period)."""
        if self._state == OPEN:
            if self.clock() - self.opened_at < self.reset_timeout_s:
                self._reject()
            self.successes = 0
            self._transition(HALF_OPEN)
        if self._state == HALF_OPEN:
            if self.in_flight_probes >= self.half_open_max_calls:
                self._reject()
            self.in_flight_probes += 1
            return True, self.period
        return False, self.period

    def _reject(self) -> None:
        if self.telemetry is not None:
            self.telemetry.emit("breaker.rejected", breaker=self.name)
        raise CircuitOpenError(self.name)

    def _on_success(self, token: tuple[bool, int]) -> None:
        probe, period = token
        if period != self.period:
            return  # started in an earlier period: its news is stale
        if probe:
            self.in_flight_probes -= 1
            self.successes += 1
            if self.successes >= self.success_threshold:
                self.failures = 0
                self.successes = 0
                self._transition(CLOSED)
        else:
            self.failures = 0

    def _on_failure(self, token: tuple[bool, int]) -> None:
        probe, period = token
        if period != self.period:
            return
        if probe:
            self.in_flight_probes -= 1
            self.failures += 1
            self.successes = 0  # a failed probe starts the count afresh
            self._transition(OPEN)
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._transition(OPEN)
                self.failures = 0

    def _on_abandoned(self, token: tuple[bool, int]) -> None:
        probe, period = token
        if probe and period == self.period:
            self.in_flight_probes -= 1

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        token = self._admit()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            # A deadline inside the call surfaces here as TimeoutError: a failure of the callee.
            if self.is_failure(exc):
                self._on_failure(token)
            else:
                self._on_success(token)  # e.g. a 4xx: the service answered, it is not down
            raise
        except BaseException:  # cancelled from outside (shutdown): neither success nor failure
            self._on_abandoned(token)
            raise
        self._on_success(token)
        return result
