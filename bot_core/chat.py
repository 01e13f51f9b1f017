"""A local WhatsApp user: sends signed deliveries to a webhook, reads the replies from the outbox.

The library behind `botctl chat`. Replies are read from ``MensajesSalientes``
(the same database the server writes), in the order the bot wrote them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot_core.storage import Database
from bot_core.webhook import meta


@dataclass(frozen=True)
class BotReply:
    kind: str
    text: str
    options: tuple[tuple[str, str], ...]


@dataclass
class ChatSession:
    url: str
    app_secret: str
    db: Database
    telefono: str
    timeout_s: float = 10.0
    last_options: tuple[tuple[str, str], ...] = ()
    last_kind: str = "buttons"
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))

    def say(self, line: str) -> list[BotReply]:
        """Send what the user typed; a number picks one of the last offered options."""
        line = line.strip()
        if line.isdigit() and self.last_options and 1 <= int(line) <= len(self.last_options):
            option_id, title = self.last_options[int(line) - 1]
            message = meta.reply_message(self.telefono, option_id, title,
                                         "list" if self.last_kind == "list" else "button")
        else:
            message = meta.text_message(self.telefono, line)
        body, headers = meta.signed_body(meta.envelope([message]), self.app_secret)
        response = self._client.post(self.url, content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")
        replies = self.wait_for_replies(message["id"])
        for reply in replies:
            if reply.options:
                self.last_options, self.last_kind = reply.options, reply.kind
        return replies

    def wait_for_replies(self, message_id: str) -> list[BotReply]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            rows = self._replies(message_id)
            if rows:
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply within {self.timeout_s:.0f}s")
            time.sleep(0.05)

    def _replies(self, message_id: str) -> list[BotReply]:
        with self.db.connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT Tipo, Contenido FROM MensajesSalientes WHERE MensajeOrigenId = ? ORDER BY Secuencia",
                        (message_id,))
            rows = cur.fetchall()
            conn.rollback()
        out = []
        for kind, content in rows:
            data: dict[str, Any] = json.loads(content)
            out.append(BotReply(kind, data.get("text", ""), tuple(tuple(o) for o in data.get("options", []))))
        return out

    def close(self) -> None:
        self._client.close()


def format_reply(reply: BotReply) -> str:
    lines = [f"bot: {reply.text}"]
    lines += [f"     {i}) {title}" for i, (_, title) in enumerate(reply.options, start=1)]
    return "\n".join(lines)
