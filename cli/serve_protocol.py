"""uvicorn's HTTP protocol for `botctl serve`, with the two limits uvicorn lacks (docs/security.md).

uvicorn times out an idle keep-alive connection, limits concurrency (503 past it) and, with
h11, the size of an incomplete event; but a connection that never finishes its request
headers (slowloris) stays open forever, and httptools accepts headers of any size. Here
every connection must complete its request headers within ``header_timeout_seconds`` of
opening (or of its previous response) and within ``max_header_bytes``, or it is closed.
The body read timeout is the app's (``body_timeout_seconds``, a 408).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from bot_core.config import load_config

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional (uvicorn[standard] brings it)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

@functools.cache  # uvicorn builds the protocol itself: read the configuration once per worker
def limits() -> tuple[float, int]:
    """(header timeout in seconds, max header bytes) from the configuration `serve` handed down."""
    config = load_config()
    return config.get("header_timeout_seconds"), config.get("max_header_bytes")


class HeaderDeadline:
    """Mixin over a uvicorn HTTP protocol: request headers complete in time and in size, or close."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        """Wait for the next request's headers: they must start a new cycle before the deadline."""
        timeout, _ = limits()
        if self._deadline is not None:
            self._deadline.cancel()
        self._header_bytes = 0
        self._deadline = self.loop.call_later(timeout, self._expire)

    def _waiting_for_headers(self) -> bool:
        """No request in progress: the next one's head has not been read in full yet."""
        return self.cycle is None or self.cycle.response_complete

    def _expire(self) -> None:
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting_for_headers()
        super().data_received(data)  # type: ignore[misc]
        if not waiting or self.transport.is_closing():
            return
        if self._waiting_for_headers():  # still no complete request head
            self._header_bytes += len(data)
            too_big = self._header_bytes > limits()[1]
        else:  # the head completed within this chunk: measure what was parsed
            too_big = sum(len(k) + len(v) + 4 for k, v in self.cycle.scope["headers"]) > limits()[1]
        if too_big:  # closed before the app's task runs: nothing is answered
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]


class GuardedH11Protocol(HeaderDeadline, H11Protocol):
    pass


if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):
        pass

    GuardedProtocol: type = GuardedHttpToolsProtocol
else:
    GuardedProtocol = GuardedH11Protocol
