"""The circuit breaker against a reference model (hypothesis stateful testing), plus its edges."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot_core.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError
from tests.conftest import captured_telemetry

N, RESET, M, PROBES = 3, 10.0, 2, 2


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Model:
    """The specification, written as plainly as possible."""

    def __init__(self):
        self.state, self.failures, self.successes, self.opened_at, self.probes = CLOSED, 0, 0, 0.0, 0

    def admit(self, now):
        if self.state == OPEN:
            if now - self.opened_at < RESET:
                return "rejected"
            self.state, self.successes = HALF_OPEN, 0
        if self.state == HALF_OPEN:
            if self.probes >= PROBES:
                return "rejected"
            self.probes += 1
            return "probe"
        return "normal"

    def success(self, kind, now):
        if kind == "probe":
            self.probes -= 1
            if self.state == HALF_OPEN:
                self.successes += 1
                if self.successes >= M:
                    self.state, self.failures, self.successes = CLOSED, 0, 0
        elif self.state == CLOSED:
            self.failures = 0

    def failure(self, kind, now):
        if kind == "probe":
            self.probes -= 1
            if self.state == HALF_OPEN:
                self.state, self.opened_at, self.failures, self.successes = OPEN, now, 0, 0
        elif self.state == CLOSED:
            self.failures += 1
            if self.failures >= N:
                self.state, self.opened_at, self.failures = OPEN, now, 0


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = Clock()
        self.telemetry, self.capture = captured_telemetry()
        self.breaker = CircuitBreaker("ai", self.telemetry, failure_threshold=N, reset_timeout_s=RESET,
                                      success_threshold=M, half_open_max_calls=PROBES, clock=self.clock)
        self.model = Model()
        self.held: list[str] = []  # calls admitted and still running (kinds)

    def _admit(self):
        expected = self.model.admit(self.clock.now)
        try:
            probe = self.breaker._admit()
            got = "probe" if probe else "normal"
        except CircuitOpenError:
            got = "rejected"
        assert got == expected
        return got

    @rule(ok=st.booleans())
    def call_and_finish(self, ok):
        kind = self._admit()
        if kind != "rejected":
            self._finish(kind, ok)

    @rule()
    def start_and_hold(self):
        kind = self._admit()
        if kind != "rejected":
            self.held.append(kind)

    @precondition(lambda self: self.held)
    @rule(ok=st.booleans(), index=st.integers(0, 10))
    def finish_held(self, ok, index):
        self._finish(self.held.pop(index % len(self.held)), ok)

    def _finish(self, kind, ok):
        probe = kind == "probe"
        if ok:
            self.breaker._on_success(probe)
            self.model.success(kind, self.clock.now)
        else:
            self.breaker._on_failure(probe)
            self.model.failure(kind, self.clock.now)

    @rule(seconds=st.sampled_from([0.5, 3.0, 9.99, 10.0, 25.0]))
    def time_passes(self, seconds):
        self.clock.now += seconds

    @invariant()
    def same_state(self):
        assert self.breaker._state == self.model.state
        assert self.breaker.in_flight_probes == self.model.probes
        assert self.breaker.failures == self.model.failures

    @invariant()
    def every_transition_is_an_event(self):
        transitions = self.capture.events("breaker.transition")
        for record in transitions:
            assert record.getMessage() == (f"[CircuitBreaker] State changed: {record.custom_dimensions['from_state']}"
                                           f" -> {record.custom_dimensions['to_state']}")


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestBreakerAgainstModel = BreakerMachine.TestCase


async def fail():
    raise ConnectionError("down")


async def succeed():
    return "ok"


def test_release_note_scenario_half_open_failure_reopens_and_resets():
    clock = Clock()
    telemetry, capture = captured_telemetry()
    b = CircuitBreaker("ai", telemetry, failure_threshold=2, reset_timeout_s=5, success_threshold=2, clock=clock)
    seen = []
    b.subscribe(lambda a, z: seen.append(f"{a}->{z}"))

    async def scenario():
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await b.call(fail)
        assert b.state == OPEN
        with pytest.raises(CircuitOpenError):
            await b.call(succeed)  # rejected fast, the callee is not called
        clock.now = 5
        assert b.state == HALF_OPEN
        assert await b.call(succeed) == "ok"  # 1 of 2 successes
        with pytest.raises(ConnectionError):
            await b.call(fail)  # a failure in HALF_OPEN re-opens and resets the count
        clock.now = 10
        assert await b.call(succeed) == "ok"
        assert b.state == HALF_OPEN  # the earlier success does not count any more
        assert await b.call(succeed) == "ok"
        assert b.state == CLOSED

    asyncio.run(scenario())
    assert seen == ["CLOSED->OPEN", "OPEN->HALF_OPEN", "HALF_OPEN->OPEN", "OPEN->HALF_OPEN", "HALF_OPEN->CLOSED"]
    assert len(capture.events("breaker.transition")) == 5
    assert len(capture.events("breaker.rejected")) == 1


def test_half_open_lets_a_bounded_number_of_probes_through():
    clock = Clock()
    b = CircuitBreaker("ai", failure_threshold=1, reset_timeout_s=1, half_open_max_calls=1, clock=clock)

    async def scenario():
        with pytest.raises(ConnectionError):
            await b.call(fail)
        clock.now = 1
        gate = asyncio.Event()

        async def slow_probe():
            await gate.wait()
            return "probe"

        probe = asyncio.create_task(b.call(slow_probe))
        await asyncio.sleep(0)
        with pytest.raises(CircuitOpenError):
            await b.call(succeed)  # a second caller fails fast while the probe runs
        gate.set()
        assert await probe == "probe"

    asyncio.run(scenario())


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
