"""The composition retry > breaker > per-attempt deadline, within one budget."""

from __future__ import annotations

import asyncio
import time

from bot_core.breaker import CircuitBreaker, OPEN
from bot_core.policies import CallPolicy, PermanentError
from tests.conftest import captured_telemetry


def policy(**kw):
    telemetry, capture = captured_telemetry()
    kw.setdefault("deadline_s", 0.1)
    return CallPolicy("detectIntent", "openai", telemetry, rng=lambda: 0.5, **kw), capture


def test_per_attempt_deadline_and_total_budget():
    attempts = []

    async def hang():
        attempts.append(time.monotonic())
        await asyncio.sleep(10)

    p, capture = policy(deadline_s=0.1, budget_s=0.35, retries=5, backoff_s=0.01)
    started = time.monotonic()
    outcome = asyncio.run(p.run(hang, "fallback"))
    elapsed = time.monotonic() - started
    assert outcome.value == "fallback" and outcome.status == "timeout"
    assert 0.3 <= elapsed < 0.45  # retried while the budget allowed, never beyond it
    assert outcome.attempts == len(attempts) >= 3
    (event,) = capture.events("ai.timeout")  # one event when falling back, not one per attempt
    assert event.custom_dimensions == {**event.custom_dimensions, "operation": "detectIntent", "timeout_ms": 100}


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
    started = time.monotonic()
    assert asyncio.run(p.run(down, {})).status == "open" and calls["n"] == 2
    assert time.monotonic() - started < 0.05
