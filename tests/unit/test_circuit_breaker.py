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
    """The specification, written as plainly as possible. Every state change starts a new
    period; an outcome counts only in the period its call started in."""

    def __init__(self):
        self.state, self.failures, self.successes, self.opened_at, self.probes = CLOSED, 0, 0, 0.0, 0
        self.period = 0

    def _go(self, state, now):
        self.state, self.period = state, self.period + 1
        if state == OPEN:
            self.opened_at = now
        if state == HALF_OPEN:
            self.probes = 0

    def admit(self, now):
        if self.state == OPEN:
            if now - self.opened_at < RESET:
                return "rejected", None
            self.successes = 0
            self._go(HALF_OPEN, now)
        if self.state == HALF_OPEN:
            if self.probes >= PROBES:
                return "rejected", None
            self.probes += 1
            return "probe", self.period
        return "normal", self.period

    def success(self, kind, period, now):
        if period != self.period:
            return
        if kind == "probe":
            self.probes -= 1
            self.successes += 1
            if self.successes >= M:
                self.failures, self.successes = 0, 0
                self._go(CLOSED, now)
        else:
            self.failures = 0

    def failure(self, kind, period, now):
        if period != self.period:
            return
        if kind == "probe":
            self.probes -= 1
            self.failures, self.successes = 0, 0
            self._go(OPEN, now)
        else:
            self.failures += 1
            if self.failures >= N:
                self.failures = 0
                self._go(OPEN, now)


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = Clock()
        self.telemetry, self.capture = captured_telemetry()
        self.breaker = CircuitBreaker("ai", self.telemetry, failure_threshold=N, reset_timeout_s=RESET,
                                      success_threshold=M, half_open_max_calls=PROBES, clock=self.clock)
        self.model = Model()
        self.held: list[tuple] = []  # calls admitted and still running

    def _admit(self):
        expected = self.model.admit(self.clock.now)
        try:
            token = self.breaker._admit()
            got = ("probe" if token[0] else "normal", token)
        except CircuitOpenError:
            got = ("rejected", None)
        assert got[0] == expected[0]
        return got[0], got[1], expected[1]

    @rule(ok=st.booleans())
    def call_and_finish(self, ok):
        kind, token, period = self._admit()
        if kind != "rejected":
            self._finish(kind, token, period, ok)

    @rule()
    def start_and_hold(self):
        kind, token, period = self._admit()
        if kind != "rejected":
            self.held.append((kind, token, period))

    @precondition(lambda self: self.held)
    @rule(ok=st.booleans(), index=st.integers(0, 10))
    def finish_held(self, ok, index):
        self._finish(*self.held.pop(index % len(self.held)), ok)

    def _finish(self, kind, token, period, ok):
        if ok:
            self.breaker._on_success(token)
            self.model.success(kind, period, self.clock.now)
        else:
            self.breaker._on_failure(token)
            self.model.failure(kind, period, self.clock.now)

    @rule(seconds=st.sampled_from([0.5, 3.0, 9.99, 10.0, 25.0]))
    def time_passes(self, seconds):
        self.clock.now += seconds

    @invariant()
    def same_state(self):
        assert self.breaker._state == self.model.state
        assert self.breaker.in_flight_probes == self.model.probes
        assert self.breaker.failures == self.model.failures
        assert self.breaker.period == self.model.period

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


def test_a_stale_probe_neither_closes_the_circuit_nor_frees_the_new_probe_slot():
    clock = Clock()
    b = CircuitBreaker("ai", failure_threshold=1, reset_timeout_s=1, success_threshold=1,
                       half_open_max_calls=1, clock=clock)
    b._on_failure(b._admit())                 # CLOSED -> OPEN
    clock.now = 1
    slow = b._admit()                         # probe of the first HALF_OPEN period, still running
    clock.now = 2
    b._transition(OPEN)                       # re-opened meanwhile (another probe failed)
    clock.now = 10
    current = b._admit()                      # a new HALF_OPEN period: its own slot
    with pytest.raises(CircuitOpenError):
        b._admit()                            # the slot is taken by the current probe only
    b._on_success(slow)                       # the stale success arrives late
    assert b.state == HALF_OPEN and b.in_flight_probes == 1
    b._on_success(current)
    assert b.state == CLOSED


# --- one scenario read step by step: counters, events and errors (mutation survivors) -------------


def test_constructor_rejects_bad_settings_and_has_the_documented_defaults():
    message = "breaker thresholds must be >= 1 and the reset timeout >= 0"
    for bad in ({"failure_threshold": 0}, {"success_threshold": 0}, {"half_open_max_calls": 0},
                {"reset_timeout_s": -0.1}):
        with pytest.raises(ValueError) as refused:
            CircuitBreaker("ai", **bad)
        assert str(refused.value) == message
    assert CircuitBreaker("ai", reset_timeout_s=0).reset_timeout_s == 0
    b = CircuitBreaker("ai")
    assert (b.failure_threshold, b.reset_timeout_s, b.success_threshold, b.half_open_max_calls) == (5, 30.0, 2, 1)
    assert (b.state, b.failures, b.successes, b.opened_at, b.in_flight_probes) == (CLOSED, 0, 0, 0.0, 0)


def test_a_scenario_step_by_step():
    clock = Clock()
    telemetry, capture = captured_telemetry()
    b = CircuitBreaker("ai-x", telemetry, failure_threshold=2, reset_timeout_s=10, success_threshold=2, clock=clock,
                       is_failure=lambda exc: not isinstance(exc, ValueError))

    async def ok(*args, **kwargs):
        return args, kwargs

    async def down():
        raise ConnectionError("down")

    async def rejected(value):
        raise ValueError(value)  # an answer, not an outage

    def run(fn, *args, **kwargs):
        return asyncio.run(b.call(fn, *args, **kwargs))

    assert run(ok, 1, 2, k=3) == ((1, 2), {"k": 3})
    for _ in range(2):
        with pytest.raises(ConnectionError):
            run(down)
        assert b.failures in (1, 0)
    assert b.state == OPEN and b.failures == 0
    (opened,) = capture.events("breaker.transition")
    assert {k: opened.custom_dimensions[k] for k in ("breaker", "from_state", "to_state", "failures")} == {
        "breaker": "ai-x", "from_state": CLOSED, "to_state": OPEN, "failures": 2}
    with pytest.raises(CircuitOpenError) as caught:
        run(ok)
    assert caught.value.name == "ai-x" and str(caught.value) == "circuit ai-x is open"
    assert capture.events("breaker.rejected")[0].custom_dimensions["breaker"] == "ai-x"
    clock.now = 10.0
    with pytest.raises(ValueError):
        run(rejected, "4xx")  # a probe answered: one success of two
    assert (b.state, b.successes, b.in_flight_probes) == (HALF_OPEN, 1, 0)
    with pytest.raises(ConnectionError):
        run(down)  # a failed probe: open again, the count of successes starts afresh
    assert (b.state, b.successes, b.failures, b.opened_at) == (OPEN, 0, 0, 10.0)
    reopened = capture.events("breaker.transition")[-1].custom_dimensions
    assert (reopened["from_state"], reopened["to_state"], reopened["failures"]) == (HALF_OPEN, OPEN, 1)
    clock.now = 20.0
    run(ok)
    assert (b.state, b.successes) == (HALF_OPEN, 1)
    run(ok)
    assert (b.state, b.successes, b.failures) == (CLOSED, 0, 0)
    last = capture.events("breaker.transition")[-1].custom_dimensions
    assert (last["from_state"], last["to_state"], last["failures"]) == (HALF_OPEN, CLOSED, 0)
    with pytest.raises(ConnectionError):
        run(down)
    assert b.failures == 1
    run(ok)  # a success while closed forgives earlier failures
    assert b.failures == 0
    with pytest.raises(ConnectionError):
        run(down)
    assert b.state == CLOSED and b.failures == 1


def test_a_cancelled_probe_gives_its_slot_back():
    clock = Clock()
    b = CircuitBreaker("ai", failure_threshold=1, reset_timeout_s=1, half_open_max_calls=1, clock=clock)

    async def down():
        raise ConnectionError

    async def scenario():
        with pytest.raises(ConnectionError):
            await b.call(down)
        clock.now = 1.0
        task = asyncio.ensure_future(b.call(asyncio.sleep, 60))
        await asyncio.sleep(0)
        assert b.in_flight_probes == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert b.in_flight_probes == 0 and b.state == HALF_OPEN
        assert await b.call(asyncio.sleep, 0, "fine") == "fine"

    asyncio.run(scenario())
    assert b.state == HALF_OPEN and b.successes == 1


def test_a_cancelled_call_while_closed_takes_no_probe_slot():
    b = CircuitBreaker("ai", failure_threshold=1, reset_timeout_s=1, half_open_max_calls=1, clock=Clock())

    async def scenario():
        task = asyncio.ensure_future(b.call(asyncio.sleep, 60))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert (b.state, b.in_flight_probes, b.failures) == (CLOSED, 0, 0)
