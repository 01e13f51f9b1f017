"""Meta-shaped webhook payloads, signed as Meta signs them.

Used by `botctl chat`, `botctl loadtest` and the tests to talk to the webhook
exactly as WhatsApp does: the same envelope, the same X-Hub-Signature-256.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bot_core.webhook.signature import sign

PHONE_NUMBER_ID = "100000000000001"


def new_wamid() -> str:
    return "wamid." + uuid.uuid4().hex.upper()


def sender(user: str) -> dict[str, str]:
    """The sender fields of a message from ``user``: a phone goes in ``from``; a BSUID alone (a
    user with a username, no phone shared) in ``from_user_id``, as Meta sends it since 2026."""
    return {"from": user} if user.isdigit() else {"from_user_id": user}


def text_message(telefono: str, body: str, wamid: str | None = None, ts: int | None = None) -> dict[str, Any]:
    return {**sender(telefono), "id": wamid or new_wamid(), "timestamp": str(ts or int(time.time())),
            "type": "text", "text": {"body": body}}


def reply_message(telefono: str, option_id: str, title: str, kind: str = "button",
                  wamid: str | None = None) -> dict[str, Any]:
    """A tap on a reply button (kind "button") or a list row (kind "list")."""
    key = "button_reply" if kind == "button" else "list_reply"
    return {**sender(telefono), "id": wamid or new_wamid(), "timestamp": str(int(time.time())),
            "type": "interactive",
            "interactive": {"type": key, key: {"id": option_id, "title": title}}}


def media_message(telefono: str, kind: str = "image", wamid: str | None = None) -> dict[str, Any]:
    return {**sender(telefono), "id": wamid or new_wamid(), "timestamp": str(int(time.time())), "type": kind,
            kind: {"id": uuid.uuid4().hex, "mime_type": "image/jpeg"}}


def status_update(wamid: str, status: str, recipient: str, errors: list[dict] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                            "recipient_id": recipient}
    if errors:
        item["errors"] = errors
    return item


def envelope(messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None,
             contacts: bool = True) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID}}
    if messages:
        value["messages"] = messages
        if contacts:
            value["contacts"] = [{"profile": {"name": "Tecnico"}, **_contact_ids(m)} for m in messages]
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}]}


def _contact_ids(message: dict[str, Any]) -> dict[str, str]:
    if "from" in message:
        return {"wa_id": message["from"]}
    return {"user_id": message.get("from_user_id", "")}


def signed_body(payload: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw bytes and headers of a delivery. Meta escapes non-ASCII as \\uXXXX."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, app_secret)}
