"""The WhatsApp Cloud API sender: ``POST /{version}/{phone_number_id}/messages``.

Errors are classified by Meta's error codes and turned into a SendResult; the
dispatcher records it and the outbox row waits for its next attempt:

* retried with exponential backoff and jitter: network errors and timeouts, HTTP 5xx,
  131000 (something went wrong), 131016 (service unavailable), 133004 (server unavailable);
* 130429 (throughput limit): the whole number is throttled (every send waits), then retried;
* 131056 (pair rate limit): that recipient only is held back, then retried;
* 190 (access token expired or revoked): an alert event, and the message waits for a new
  token (retried slowly) rather than being dropped;
* never retried: 131047 (24-hour window closed), 131026 (undeliverable), 131048 (spam
  rate limit), 131049 (ecosystem limit), every 100-series code (bad parameters), other 4xx.
"""

from __future__ import annotations

import random
import ssl
import time
from typing import Any, Callable

import httpx

from bot_core.identity import is_bsuid
from bot_core.outbox import FAILED, PENDING, SENT, OutboundMessage, SendResult
from bot_core.telemetry import Telemetry

RETRYABLE_CODES = frozenset({131000, 131016, 133004})
NEVER_RETRY_CODES = frozenset({131047, 131026, 131048, 131049})
THROUGHPUT_LIMIT, PAIR_RATE_LIMIT, TOKEN_EXPIRED = 130429, 131056, 190
MAX_ATTEMPTS = 8
LIST_BUTTON_LABEL = "Ver opciones"


def message_payload(message: OutboundMessage) -> dict[str, Any]:
    """The Cloud API body for a text, reply-buttons or list message. A phone goes in ``to``;
    a business-scoped user ID goes in ``recipient`` (never both: ``to`` would take precedence)."""
    field_name = "recipient" if is_bsuid(message.telefono) else "to"
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            field_name: message.telefono}
    if message.kind == "text" or not message.options:
        return {**base, "type": "text", "text": {"preview_url": False, "body": message.text}}
    if message.kind == "buttons":
        if len(message.options) > 3 or any(len(title) > 20 for _, title in message.options):
            raise ValueError("reply buttons: at most 3, titles of at most 20 characters")
        buttons = [{"type": "reply", "reply": {"id": oid, "title": title}} for oid, title in message.options]
        return {**base, "type": "interactive",
                "interactive": {"type": "button", "body": {"text": message.text}, "action": {"buttons": buttons}}}
    if len(message.options) > 10 or any(len(title) > 24 for _, title in message.options):
        raise ValueError("list: at most 10 rows, titles of at most 24 characters")
    rows = [{"id": oid, "title": title} for oid, title in message.options]
    return {**base, "type": "interactive",
            "interactive": {"type": "list", "body": {"text": message.text},
                            "action": {"button": LIST_BUTTON_LABEL, "sections": [{"title": "Opciones", "rows": rows}]}}}


class GraphApiSender:
    def __init__(self, base_url: str, api_version: str, phone_number_id: str, token: str, telemetry: Telemetry,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random,
                 verify: ssl.SSLContext | bool = True):
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.telemetry = telemetry
        self.http = client or httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=16),
                                                verify=verify)
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.clock = clock
        self.rng = rng
        self.number_not_before = 0.0
        self.recipient_not_before: dict[str, float] = {}

    def _backoff(self, attempts: int, base: float = 1.0, cap: float = 300.0) -> float:
        return min(cap, base * 2 ** (attempts - 1)) * (0.5 + self.rng())

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            payload = message_payload(message)
        except ValueError as exc:
            return SendResult(FAILED, error_code="invalid", error_detail=str(exc))
        now = self.clock()
        wait = max(self.number_not_before, self.recipient_not_before.get(message.telefono, 0.0)) - now
        if wait > 0:
            # Throttled: do not even try; the row comes back when the limit has passed.
            return SendResult(PENDING, retry_after_s=wait, error_code="throttled")
        try:
            response = await self.http.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            return self._retry(message, type(exc).__name__, str(exc)[:200])
        if response.status_code < 300:
            try:
                wamid = response.json()["messages"][0]["id"]
            except (ValueError, KeyError, IndexError, TypeError):
                return self._retry(message, "bad-response", "no message id in the answer")
            return SendResult(SENT, wamid=wamid)
        code, title = _error(response)
        return self._classify(message, response.status_code, code, title)

    def _classify(self, message: OutboundMessage, status: int, code: int | None, title: str) -> SendResult:
        label = str(code if code is not None else status)
        if code == THROUGHPUT_LIMIT:
            delay = self._backoff(message.attempts, base=2.0, cap=60.0)
            self.number_not_before = self.clock() + delay
            return SendResult(PENDING, retry_after_s=delay, error_code=label, error_detail=title)
        if code == PAIR_RATE_LIMIT:
            delay = self._backoff(message.attempts, base=6.0, cap=120.0)
            self.recipient_not_before[message.telefono] = self.clock() + delay
            return SendResult(PENDING, retry_after_s=delay, error_code=label, error_detail=title)
        if code == TOKEN_EXPIRED:
            self.telemetry.emit("whatsapp.token_expired", error_code=label)
            return SendResult(PENDING, retry_after_s=60.0, error_code=label, error_detail=title)
        if code in NEVER_RETRY_CODES or (code is not None and 100 <= code < 200):
            return SendResult(FAILED, error_code=label, error_detail=title)
        if code in RETRYABLE_CODES or status >= 500:
            return self._retry(message, label, title)
        return SendResult(FAILED, error_code=label, error_detail=title)

    def _retry(self, message: OutboundMessage, code: str, detail: str) -> SendResult:
        if message.attempts >= MAX_ATTEMPTS:
            return SendResult(FAILED, error_code=code, error_detail=f"gave up after {message.attempts} attempts: {detail}")
        return SendResult(PENDING, retry_after_s=self._backoff(message.attempts), error_code=code, error_detail=detail)

    async def aclose(self) -> None:
        await self.http.aclose()


def _error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return None, f"HTTP {response.status_code}"
    code = error.get("code")
    return (code if isinstance(code, int) else None), str(error.get("message") or error.get("title") or "")[:300]
