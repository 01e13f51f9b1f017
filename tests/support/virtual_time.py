"""An asyncio event loop on a virtual clock: timers fire in order, instantly, at exact times.

When nothing is ready, the loop's selector advances the clock to the next timer instead of
sleeping, so ``asyncio.sleep(10)`` costs nothing and a deadline's expiry is exact: tests of
deadlines and budgets assert times, not wall-clock durations. Real I/O still works (a
ready socket is served at once); waiting on I/O with no timer pending blocks as usual.

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        runner.run(main())
"""

from __future__ import annotations

import asyncio
import selectors


class _AdvancingSelector(selectors.DefaultSelector):
    def __init__(self, loop: "VirtualClockLoop"):
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return super().select(None)
        self._loop.advance(timeout)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_AdvancingSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def run_virtual(coro):
    """``asyncio.run`` on a virtual clock starting at 0."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)
