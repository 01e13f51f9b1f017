"""A scriptable HTTP/1.1 server on loopback for fakes of outside services (AI providers, Graph API).

Raw asyncio, so a fake can also hang forever or drop the connection mid-request,
which a framework would not let it do. Each fake supplies ``respond(method, path,
headers, body) -> (status, json_body[, delay_s]) | "hang" | "close"`` (sync or
async). A hanging or slow answer watches the connection: when the client aborts
its request the fake sees EOF and lets go, so ``open_connections`` returning to
zero proves the client closed what it opened.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from typing import Any, Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeHttpServer:
    def __init__(self, respond: Callable[..., Any], tls: ssl.SSLContext | None = None):
        self.respond = respond
        self.tls = tls  # a server context: the fake speaks HTTPS
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.open_connections = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                self.requests.append({"method": method, "path": path, "headers": headers, "json": parsed})
                answer = self.respond(method, path, headers, parsed)
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if answer == "close":
                    return
                if answer == "hang":
                    await reader.read()  # until the client gives up and closes: then we see EOF
                    return
                status, payload, *delay = answer
                if delay and delay[0] > 0:
                    try:  # a slow answer, unless the client gave up first
                        if await asyncio.wait_for(reader.read(), delay[0]) == b"":
                            return
                    except asyncio.TimeoutError:
                        pass
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ValueError, ssl.SSLError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                                             ssl=self.tls))
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> "FakeHttpServer":
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        def shutdown():
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.05, self.loop.stop)
        self.loop.call_soon_threadsafe(shutdown)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> "FakeHttpServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class FakeAI(FakeHttpServer):
    """OpenAI-compatible /chat/completions and Gemini :generateContent, in one of these modes:
    ok | slow (answers after ``delay_s``) | hang | 500 | invalid-json | close."""

    def __init__(self, mode: str = "ok", delay_s: float = 0.0, answer: dict | None = None,
                 tls: ssl.SSLContext | None = None):
        self.mode, self.delay_s = mode, delay_s
        self.answer = answer or {"intent": "REPORTE_REFRIGERADOR", "confidence": 0.9, "codigo_sap": "4001234",
                                 "problema": "no enfría"}
        super().__init__(self._respond, tls)

    def _respond(self, method: str, path: str, headers: dict, body: Any):
        mode = self.mode
        if mode in ("hang", "close"):
            return mode
        if mode == "500":
            return 500, {"error": {"message": "internal"}}
        content = "{not json" if mode == "invalid-json" else json.dumps(self.answer)
        delay = self.delay_s if mode == "slow" else 0.0
        if ":generateContent" in path:
            return 200, {"candidates": [{"content": {"parts": [{"text": content}], "role": "model"}}]}, delay
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}, delay


class FakeGraph(FakeHttpServer):
    """The Graph API's /{version}/{phone_number_id}/messages. ``script`` is a list of answers
    consumed in order (then ``default``): "ok", an int Meta error code, ("http", status),
    "close", "hang", or a callable of the request body returning one of those.
    Successful sends get wamids wamid.OUT1, wamid.OUT2, …"""

    ERROR_STATUS = {130429: 400, 131056: 400, 190: 401, 131000: 500, 131016: 503, 133004: 503}

    def __init__(self, script: list | None = None, default: Any = "ok", tls: ssl.SSLContext | None = None):
        self.script = list(script or [])
        self.default = default
        self.sent = 0
        super().__init__(self._respond, tls)

    def _respond(self, method: str, path: str, headers: dict, body: Any):
        answer = self.script.pop(0) if self.script else self.default
        if callable(answer):
            answer = answer(body)
        if answer in ("close", "hang"):
            return answer
        if isinstance(answer, tuple):
            return answer[1], {"error": {"message": "upstream", "code": None}}
        if answer == "ok":
            self.sent += 1
            # As Meta answers: wa_id for a send to a phone (``to``), user_id for one to a BSUID (``recipient``).
            contact = ({"input": body["to"], "wa_id": body["to"]} if "to" in body
                       else {"input": body.get("recipient"), "user_id": body.get("recipient")})
            return 200, {"messaging_product": "whatsapp", "contacts": [contact],
                         "messages": [{"id": f"wamid.OUT{self.sent}"}]}
        status = self.ERROR_STATUS.get(answer, 400)
        return status, {"error": {"message": f"error {answer}", "type": "OAuthException", "code": answer,
                                  "error_data": {"details": "fake"}, "fbtrace_id": "X"}}
