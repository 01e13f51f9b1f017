"""A local WhatsApp user: signed deliveries to a webhook, the bot's replies through the Graph API.

The library behind `botctl chat`. The user's "phone" is :class:`LocalGraph`, a stand-in for the
Graph API's ``POST /{version}/{phone_number_id}/messages`` on loopback: the server's sender posts
the replies to it (``whatsapp.base_url`` pointing there), exactly as it would post them to Meta.
So a chat never reads the server's database, and works against any server that sends to it.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bot_core.errors import BotctlError, ConfigError
from bot_core.webhook import meta


class ChatError(BotctlError):
    """The server cannot be reached, refused the delivery, or sent no reply."""


class UnknownOption(ChatError):
    """``/tap`` named an option the bot never offered: the user's typo, nothing was sent."""


@dataclass(frozen=True)
class BotReply:
    kind: str  # text | buttons | list
    text: str
    options: tuple[tuple[str, str], ...]
    to: str = ""


def reply_from_payload(payload: dict[str, Any]) -> BotReply:
    """A Cloud API message body (text, reply buttons or list) as the user sees it."""
    to = str(payload.get("to") or payload.get("recipient") or "")
    if payload.get("type") == "text":
        return BotReply("text", str(payload["text"]["body"]), (), to)
    if payload.get("type") == "interactive":
        interactive = payload["interactive"]
        text = str(interactive["body"]["text"])
        action = interactive["action"]
        if interactive["type"] == "button":
            options = tuple((b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"])
            return BotReply("buttons", text, options, to)
        if interactive["type"] == "list":
            options = tuple((r["id"], r["title"]) for s in action["sections"] for r in s["rows"])
            return BotReply("list", text, options, to)
    raise ValueError(f"unsupported message type {payload.get('type')!r}")


class LocalGraph:
    """The Graph API's messages endpoint on loopback; what the bot sends lands in :attr:`inbox`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.inbox: queue.Queue[BotReply] = queue.Queue()
        self._ids = itertools.count(1)
        graph = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the sender's client expects

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = graph.receive(self.path, self.headers.get("Authorization", ""), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # no access log on the chat's terminal
                pass

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} for the bot's replies: {exc.strerror} "
                              "(another botctl chat? pick a free address with --listen)") from None
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one send as the Cloud API does: a wamid, or an error with Meta's shape."""
        if not path.rstrip("/").endswith("/messages"):
            return 404, _error(100, f"unknown path {path}")
        if not authorization.startswith("Bearer "):
            return 401, _error(190, "missing access token")
        try:
            payload = json.loads(body)
            reply = reply_from_payload(payload)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, _error(100, f"invalid parameter: {exc}")
        self.inbox.put(reply)
        wamid = f"wamid.CHAT{next(self._ids)}"
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": reply.to, "wa_id": reply.to}],
                     "messages": [{"id": wamid}]}

    def start(self) -> "LocalGraph":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code}}


@dataclass
class ChatSession:
    """One user talking to the webhook at *url*; replies come from *graph* (its Graph API stand-in)."""

    url: str
    app_secret: str
    graph: LocalGraph
    telefono: str
    timeout_s: float = 10.0
    settle_s: float = 0.4  # a turn's replies leave together; this long without another ends it
    last_options: tuple[tuple[str, str], ...] = ()
    last_kind: str = "buttons"
    # Every menu the bot offered, newest last: its buttons stay tappable in a real chat's history.
    offered: list[BotReply] = field(default_factory=list)
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))

    def say(self, line: str) -> list[BotReply]:
        """Send what the user typed; a number picks one of the last offered options.

        ``/tap TITLE`` taps the newest offered button or list row with that title (an old menu's
        included, as a user scrolling up can); ``/text WORDS`` sends WORDS as typed text, a number too.
        """
        line = line.strip()
        command, _, rest = line.partition(" ")
        if command == "/tap":
            message = self._tap(rest.strip())
        elif command == "/text" and rest.strip():
            message = meta.text_message(self.telefono, rest.strip())
        elif line.isdigit() and self.last_options and 1 <= int(line) <= len(self.last_options):
            option_id, title = self.last_options[int(line) - 1]
            message = meta.reply_message(self.telefono, option_id, title,
                                         "list" if self.last_kind == "list" else "button")
        else:
            message = meta.text_message(self.telefono, line)
        body, headers = meta.signed_body(meta.envelope([message]), self.app_secret)
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChatError(f"no server at {self.url} ({_reason(exc)}): start one with `botctl serve`") from None
        if response.status_code != 200:
            raise ChatError(f"webhook answered {response.status_code}: {response.text[:200]}")
        replies = self.wait_for_replies()
        for reply in replies:
            if reply.options:
                self.last_options, self.last_kind = reply.options, reply.kind
                self.offered.append(reply)
        return replies

    def _tap(self, title: str) -> dict[str, Any]:
        wanted = title.casefold()
        for reply in reversed(self.offered):
            for option_id, option_title in reply.options:
                if option_title.casefold() == wanted:
                    return meta.reply_message(self.telefono, option_id, option_title,
                                              "list" if reply.kind == "list" else "button")
        offered = sorted({t for reply in self.offered for _, t in reply.options})
        raise UnknownOption(f"/tap {title}: no button or list row with that title was offered"
                        + (f" (offered: {', '.join(offered)})" if offered else ""))

    def wait_for_replies(self) -> list[BotReply]:
        """The replies of this turn: the first within ``timeout_s``, the rest until ``settle_s`` of quiet."""
        replies: list[BotReply] = []
        wait = self.timeout_s
        while True:
            try:
                reply = self.graph.inbox.get(timeout=wait)
            except queue.Empty:
                break
            if reply.to == self.telefono:
                replies.append(reply)
                wait = self.settle_s
        if not replies:
            raise ChatError(f"the server took the message but sent no reply to {self.graph.url} within "
                            f"{self.timeout_s:g}s: start it with --whatsapp-url {self.graph.url}")
        return replies

    def close(self) -> None:
        self._client.close()


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def format_reply(reply: BotReply) -> str:
    lines = [f"bot: {reply.text}"]
    lines += [f"     {i}) {title}" for i, (_, title) in enumerate(reply.options, start=1)]
    return "\n".join(lines)
