"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator only.

The project's HTTP client is httpx; a load generator is a measuring instrument
and httpx tops out near 500 req/s on this machine, which would measure the
client rather than the server. This client speaks just what the webhook needs:
POST with Content-Length, responses with Content-Length or chunked bodies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class TransportError(Exception):
    """Connection refused, reset, or a response we cannot read."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


class HttpPool:
    """At most ``size`` keep-alive connections to one host:port."""

    def __init__(self, host: str, port: int, size: int = 256, tls: bool = False):
        import ssl

        self.host, self.port, self.size = host, port, size
        # https:// targets: the system's trust store (SSL_CERT_FILE / SSL_CERT_DIR are honoured).
        self.ssl = ssl.create_default_context() if tls else None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self.opened = 0

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2 ** 20, ssl=self.ssl)
        except OSError as exc:  # ssl.SSLError (a certificate not trusted) is an OSError too
            raise TransportError(f"connect: {exc.strerror or exc}") from None
        self.opened += 1
        return _Connection(reader, writer)

    async def warm(self, count: int) -> None:
        """Open connections ahead of a burst so its requests leave together."""
        count = min(count, self.size) - len(self._idle)
        if count > 0:
            self._idle.extend(await asyncio.gather(*(self._connect() for _ in range(count))))

    async def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        async with self._slots:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.reader.at_eof():  # the server closed it while idle (keep-alive timeout)
                    candidate.close()
                    continue
                conn = candidate
                break
            if conn is None:
                conn = await self._connect()
            try:
                response, keep = await asyncio.wait_for(self._exchange(conn, path, body, headers), timeout)
            except asyncio.TimeoutError:
                conn.close()
                raise
            except (OSError, asyncio.IncompleteReadError, ValueError, TransportError) as exc:
                conn.close()
                raise TransportError(f"{type(exc).__name__}: {exc}") from None
            if keep:
                self._idle.append(conn)
            else:
                conn.close()
            return response

    async def _exchange(self, conn: _Connection, path: str, body: bytes,
                        headers: dict[str, str]) -> tuple[Response, bool]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await conn.writer.drain()
        status_line = await conn.reader.readline()
        if not status_line:
            raise TransportError("connection closed before the response")
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        length, chunked, keep = 0, False, True
        while True:
            line = await conn.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep = False
        if chunked:
            data = bytearray()
            while True:
                size = int((await conn.reader.readline()).strip().split(b";")[0], 16)
                if size == 0:
                    await conn.reader.readline()
                    break
                data += await conn.reader.readexactly(size)
                await conn.reader.readexactly(2)
            payload = bytes(data)
        else:
            payload = await conn.reader.readexactly(length) if length else b""
        return Response(status, payload), keep

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
