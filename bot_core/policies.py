"""Resilience as composable policies around one outward call (phase-1 fixes 1.3 and 1.4).

    retry (outside)  ->  circuit breaker  ->  per-attempt deadline (inside)  ->  the call

The whole thing lives within ``budget_s`` (the operation's fallback deadline):
an attempt gets ``min(deadline_s, budget left)``, a retry only starts if its
backoff fits in what is left, and "circuit open" is never retried. When the
call cannot give an answer in time, the caller gets the fallback value and one
event says why (``ai.timeout`` or ``ai.error``); nothing hangs.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Generic, TypeVar

from bot_core.breaker import CircuitBreaker, CircuitOpenError
from bot_core.telemetry import Telemetry

T = TypeVar("T")


class PermanentError(Exception):
    """A failure retrying will not fix (bad request, invalid answer)."""


@dataclass
class Outcome(Generic[T]):
    """A guarded call's value (or its fallback) and how the call went."""

    value: T
    status: str  # ok | timeout | error | open
    attempts: int = 0


@dataclass
class CallPolicy:
    """Deadline, budget, retries and breaker around one kind of outside call."""

    operation: str  # as the dashboards know it, e.g. "extractStructuredData"
    provider: str
    telemetry: Telemetry
    deadline_s: float
    budget_s: float | None = None  # default: the deadline (no room for a retry)
    retries: int = 0
    backoff_s: float = 0.05
    breaker: CircuitBreaker | None = None
    rng: Callable[[], float] = field(default=random.random)

    async def run(self, call: Callable[[], Awaitable[T]], fallback: T) -> Outcome[T]:
        loop = asyncio.get_running_loop()
        budget = self.budget_s if self.budget_s is not None else self.deadline_s
        end = loop.time() + budget
        attempt = 0
        while True:
            attempt += 1
            per_attempt = min(self.deadline_s, end - loop.time())

            async def bounded() -> T:
                async with asyncio.timeout(per_attempt):
                    return await call()

            try:
                value = await (self.breaker.call(bounded) if self.breaker else bounded())
                return Outcome(value, "ok", attempt)
            except CircuitOpenError:
                return Outcome(fallback, "open", attempt)
            except TimeoutError:
                status, error_type = "timeout", "TimeoutError"
            except PermanentError as exc:
                return self._fallback(fallback, "error", type(exc).__name__, attempt)
            except Exception as exc:  # network errors, 5xx: worth another attempt
                status, error_type = "error", type(exc).__name__
            backoff = self.backoff_s * 2 ** (attempt - 1) * (0.5 + self.rng())
            if attempt > self.retries or loop.time() + backoff >= end:
                return self._fallback(fallback, status, error_type, attempt)
            await asyncio.sleep(backoff)

    def _fallback(self, fallback: T, status: str, error_type: str, attempts: int) -> Outcome[T]:
        if status == "timeout":
            self.telemetry.emit("ai.timeout", operation=self.operation, provider=self.provider,
                                timeout_ms=int(self.deadline_s * 1000))
        else:
            self.telemetry.emit("ai.error", operation=self.operation, provider=self.provider,
                                error_type=error_type)
        return Outcome(fallback, status, attempts)
