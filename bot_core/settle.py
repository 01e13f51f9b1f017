"""Critical and non-critical operations, run together (phase-1 fix 1.5, "allSettled").

Independent operations run concurrently and are all awaited. A non-critical
failure is logged as ``operation.degraded`` (a warning) and its result is the
operation's fallback; a critical failure is raised, so the message is retried.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable

from bot_core.telemetry import Telemetry

# The explicit classification: what must succeed for a message to count as handled.
# commit_transition is retried (ConcurrencyError) or handed to the sweeper; dispatch_outbox and
# sweep_inbox are background loops that log operation.degraded and try again on their next tick.
CRITICAL_OPERATIONS = frozenset({"register_inbound", "commit_transition"})
NON_CRITICAL_OPERATIONS = frozenset({"understand_ai", "apply_statuses", "dispatch_outbox", "sweep_inbox"})


@dataclass
class Operation:
    """One awaitable to settle, with the fallback used when it fails."""

    name: str
    awaitable: Awaitable[Any]
    fallback: Any = None

    @property
    def critical(self) -> bool:
        if self.name in CRITICAL_OPERATIONS:
            return True
        if self.name in NON_CRITICAL_OPERATIONS:
            return False
        raise ValueError(f"operation {self.name!r} is not classified as critical or non-critical")


async def settle(telemetry: Telemetry, *operations: Operation) -> list[Any]:
    """Await all operations; raise the first critical failure, degrade the rest."""
    for op in operations:
        op.critical  # fail fast on an unclassified name, before running anything
    results = await asyncio.gather(*(op.awaitable for op in operations), return_exceptions=True)
    out: list[Any] = []
    critical_error: BaseException | None = None
    for op, result in zip(operations, results):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if op.critical:
                critical_error = critical_error or result
            else:
                telemetry.emit("operation.degraded", operation=op.name, error_type=type(result).__name__)
            out.append(op.fallback)
        else:
            out.append(result)
    if critical_error is not None:
        raise critical_error
    return out
