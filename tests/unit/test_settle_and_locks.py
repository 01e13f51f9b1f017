"""allSettled-style operations (fix 1.5) and the per-phone lock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot_core.keyed_lock import KeyedLock
from bot_core.settle import Operation, settle
from tests.conftest import captured_telemetry


def telemetry():
    return captured_telemetry()


async def ok(value, delay=0.0):
    await asyncio.sleep(delay)
    return value


async def boom(exc):
    await asyncio.sleep(0)
    raise exc


def test_non_critical_failure_is_a_warning_and_processing_goes_on():
    t, capture = telemetry()
    results = asyncio.run(settle(t, Operation("register_inbound", ok(1)),
                                 Operation("apply_statuses", boom(TimeoutError()), fallback=0)))
    assert results == [1, 0]
    (record,) = capture.records
    assert record.levelno == logging.WARNING and record.getMessage().startswith("[Degraded] apply_statuses")
    assert record.custom_dimensions["error_type"] == "TimeoutError"


def test_critical_failure_aborts_after_everything_settled():
    t, capture = telemetry()
    finished = []

    async def slow_non_critical():
        await asyncio.sleep(0.05)
        finished.append("statuses")
        return 3

    with pytest.raises(ConnectionError):
        asyncio.run(settle(t, Operation("register_inbound", boom(ConnectionError("db down"))),
                           Operation("apply_statuses", slow_non_critical())))
    assert finished == ["statuses"]  # independent work was not abandoned half-way
    assert capture.records == []


def test_operations_run_concurrently():
    t, _ = telemetry()

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await settle(t, Operation("register_inbound", ok(1, 0.1)), Operation("apply_statuses", ok(2, 0.1)))
        return loop.time() - start

    assert asyncio.run(main()) < 0.18


def test_unclassified_operations_are_refused_before_running():
    t, _ = telemetry()
    coro = ok(1)
    with pytest.raises(ValueError, match="not classified"):
        asyncio.run(settle(t, Operation("mystery", coro)))
    coro.close()


def test_keyed_lock_serialises_one_key_and_not_others():
    lock = KeyedLock()
    order = []

    async def worker(key, tag, delay):
        async with lock.hold(key):
            order.append(f"{tag}+")
            await asyncio.sleep(delay)
            order.append(f"{tag}-")

    async def main():
        await asyncio.gather(worker("a", "a1", 0.03), worker("a", "a2", 0.0), worker("b", "b1", 0.0))

    asyncio.run(main())
    assert order.index("a1-") < order.index("a2+")  # same phone: one at a time, in order
    assert order.index("b1+") < order.index("a1-")  # another phone does not wait
    assert len(lock) == 0  # idle keys are forgotten
