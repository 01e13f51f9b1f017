"""The composition retry > breaker > per-attempt deadline, within one budget."""

from __future__ import annotations

import asyncio
import time

from bot_core.breaker import CircuitBreaker, OPEN
from bot_core.policies import CallPolicy, PermanentError
from tests.conftest import captured_telemetry
from tests.support.virtual_time import run_virtual


def policy(**kw):
    telemetry, capture = captured_telemetry()
    kw.setdefault("deadline_s", 0.1)
    return CallPolicy("detectIntent", "openai", telemetry, rng=lambda: 0.5, **kw), capture


def hanging(attempts: list):
    """A call that never answers; records (start, end) of each attempt in loop time."""
    async def hang():
        loop = asyncio.get_running_loop()
        attempts.append([loop.time(), None])
        try:
            await asyncio.sleep(3600)
        finally:
            attempts[-1][1] = loop.time()
    return hang


def test_per_attempt_deadline_and_total_budget():
    attempts: list = []
    p, capture = policy(deadline_s=0.1, budget_s=0.35, retries=5, backoff_s=0.01)
    outcome = run_virtual(p.run(hanging(attempts), "fallback"))
    assert outcome.value == "fallback" and outcome.status == "timeout"
    # Backoff 0.01, 0.02, 0.04 (rng 0.5): three full attempts, then the next backoff no longer fits.
    assert [[round(t, 6) for t in a] for a in attempts] == [[0, 0.1], [0.11, 0.21], [0.23, 0.33]]
    assert outcome.attempts == len(attempts) == 3
    (event,) = capture.events("ai.timeout")  # one event when falling back, not one per attempt
    assert event.custom_dimensions == {**event.custom_dimensions, "operation": "detectIntent", "timeout_ms": 100}


def test_the_last_attempt_gets_only_what_is_left_of_the_budget():
    """The budget caps the attempt: 0.3 s deadline, 0.5 s budget -> the second attempt gets 0.19 s."""
    attempts: list = []
    p, _ = policy(deadline_s=0.3, budget_s=0.5, retries=3, backoff_s=0.01)
    outcome = run_virtual(p.run(hanging(attempts), "fallback"))
    assert [[round(t, 6) for t in a] for a in attempts] == [[0, 0.3], [0.31, 0.5]]
    assert (outcome.status, outcome.attempts) == ("timeout", 2)


def test_without_a_budget_one_attempt_gets_the_deadline():
    attempts: list = []
    p, _ = policy(deadline_s=0.3, retries=3, backoff_s=0.01)
    assert run_virtual(p.run(hanging(attempts), "fb")).value == "fb"
    assert [[round(t, 6) for t in a] for a in attempts] == [[0, 0.3]]


def test_transient_errors_are_retried_and_permanent_ones_are_not():
    calls = {"n": 0}

    async def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("reset")
        return "answer"

    p, _ = policy(deadline_s=1, budget_s=2, retries=3, backoff_s=0.01)
    assert asyncio.run(p.run(flaky, None)).value == "answer" and calls["n"] == 3

    async def invalid():
        calls["n"] += 1
        raise PermanentError("not JSON")

    calls["n"] = 0
    p, capture = policy(deadline_s=1, budget_s=2, retries=3)
    outcome = asyncio.run(p.run(invalid, "fb"))
    assert (outcome.value, outcome.status, calls["n"]) == ("fb", "error", 1)
    assert capture.events("ai.error")[0].custom_dimensions["error_type"] == "PermanentError"


def test_circuit_open_is_never_retried_and_the_breaker_sees_each_attempt():
    telemetry, _ = captured_telemetry()
    breaker = CircuitBreaker("ai", telemetry, failure_threshold=2, reset_timeout_s=60)
    calls = {"n": 0}

    async def down():
        calls["n"] += 1
        raise ConnectionError("down")

    p = CallPolicy("extractStructuredData", "openai", telemetry, deadline_s=1, budget_s=5, retries=5,
                   backoff_s=0.001, breaker=breaker)
    outcome = asyncio.run(p.run(down, {}))
    # Two attempts reach the callee and open the breaker; the third is rejected and not retried.
    assert calls["n"] == 2 and breaker.state == OPEN and outcome.status == "open"

    async def timed():
        loop = asyncio.get_running_loop()
        started = loop.time()
        return await p.run(down, {}), loop.time() - started

    outcome, spent = run_virtual(timed())
    assert outcome.status == "open" and calls["n"] == 2 and spent == 0  # no backoff, no retry
