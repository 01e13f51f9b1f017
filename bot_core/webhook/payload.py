"""Typed, unknown-field-tolerant decoding of WhatsApp Cloud API webhook payloads.

Meta's envelope: ``{"object": "whatsapp_business_account", "entry": [{"id", "changes":
[{"field": "messages", "value": {"metadata", "contacts", "messages", "statuses",
"errors"}}]}]}``. Every list may hold several items; all of them are decoded.
Fields we do not know are ignored; fields we need but that are missing or of the
wrong type make that one item invalid (reported), never the whole request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

MESSAGE_KINDS = ("text", "interactive", "button", "image", "audio", "video", "document",
                 "sticker", "location", "contacts", "reaction", "unsupported")
STATUS_KINDS = ("sent", "delivered", "read", "failed")


class PayloadError(ValueError):
    """The body is JSON but not a webhook envelope we can read."""


@dataclass(frozen=True)
class ApiError:
    code: int | None
    title: str
    message: str = ""
    details: str = ""


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    telefono: str
    kind: str  # one of MESSAGE_KINDS ("unsupported" for any type we do not know)
    timestamp: datetime
    text: str | None = None
    reply_id: str | None = None
    raw_type: str = ""
    phone_number_id: str | None = None
    errors: tuple[ApiError, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """What the inbox stores (Payload) so any process can process it later."""
        return {
            "message_id": self.message_id, "telefono": self.telefono, "kind": self.kind,
            "timestamp": self.timestamp.isoformat(), "text": self.text, "reply_id": self.reply_id,
            "raw_type": self.raw_type, "phone_number_id": self.phone_number_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "InboundMessage":
        return cls(data["message_id"], data["telefono"], data["kind"],
                   datetime.fromisoformat(data["timestamp"]), data.get("text"), data.get("reply_id"),
                   data.get("raw_type", ""), data.get("phone_number_id"))


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # one of STATUS_KINDS, or whatever new value Meta sends
    recipient: str
    timestamp: datetime
    errors: tuple[ApiError, ...] = ()


@dataclass
class WebhookBatch:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # why items were skipped


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_unicode(value: str) -> bool:
    """False for a string with a lone surrogate (JSON allows "\\ud800"; no database stores it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(value: str | None) -> str | None:
    """``value`` storable: a lone surrogate becomes the visible text ``\\ud800``."""
    if value is None or _is_unicode(value):
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(timezone.utc)


def _errors(value: Any) -> tuple[ApiError, ...]:
    out = []
    for item in _list(value):
        item = _dict(item)
        code = item.get("code")
        out.append(ApiError(code if isinstance(code, int) else None, _escaped(str(item.get("title", "")))[:200],
                            _escaped(str(item.get("message", "")))[:400],
                            _escaped(str(_dict(item.get("error_data")).get("details", "")))[:400]))
    return tuple(out)


def _text_and_reply(kind: str, msg: dict[str, Any]) -> tuple[str | None, str | None]:
    if kind == "text":
        return _str(_dict(msg.get("text")).get("body")), None
    if kind == "interactive":
        inter = _dict(msg.get("interactive"))
        choice = _dict(inter.get("button_reply")) or _dict(inter.get("list_reply"))
        return _str(choice.get("title")), _str(choice.get("id"))
    if kind == "button":  # a quick-reply button of a template message
        button = _dict(msg.get("button"))
        return _str(button.get("text")), _str(button.get("payload"))
    if kind in ("image", "video", "document"):
        return _str(_dict(msg.get(kind)).get("caption")), None
    if kind == "reaction":
        return _str(_dict(msg.get("reaction")).get("emoji")), None
    if kind == "location":
        loc = _dict(msg.get("location"))
        parts = [str(loc[k]) for k in ("name", "address") if _str(loc.get(k))]
        return (", ".join(parts) or None), None
    return None, None


def decode_message(msg: Any, phone_number_id: str | None) -> InboundMessage:
    msg = _dict(msg)
    message_id, telefono = _str(msg.get("id")), _str(msg.get("from"))
    if not message_id or not telefono:
        raise PayloadError("message without id or from")
    if len(message_id) > 128 or len(telefono) > 20:
        raise PayloadError("message id or phone too long")
    if not (_is_unicode(message_id) and _is_unicode(telefono)):
        raise PayloadError("message id or phone is not valid Unicode")
    raw_type = msg.get("type") if isinstance(msg.get("type"), str) else ""
    kind = raw_type if raw_type in MESSAGE_KINDS else "unsupported"
    if kind == "interactive" and not (_dict(msg.get("interactive")).get("button_reply")
                                      or _dict(msg.get("interactive")).get("list_reply")):
        kind = "unsupported"  # e.g. nfm_reply (flows): not something this bot asks for
    text, reply_id = _text_and_reply(kind, msg)
    text, reply_id, raw_type = _escaped(text), _escaped(reply_id), _escaped(raw_type)
    if text and "\x00" in text:
        # PostgreSQL text cannot hold NUL; every dialect stores the visible U+2400 instead.
        text = text.replace("\x00", "\u2400")
    return InboundMessage(message_id, telefono, kind, _timestamp(msg.get("timestamp")), text, reply_id,
                          raw_type, phone_number_id, _errors(msg.get("errors")))


def decode_webhook(body: Any) -> WebhookBatch:
    """Decode a parsed JSON body. Raises PayloadError only when it is not an envelope at all."""
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise PayloadError("not a WhatsApp webhook envelope (no entry list)")
    batch = WebhookBatch()
    for entry in body["entry"]:
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            if change.get("field", "messages") != "messages":
                continue
            phone_number_id = _escaped(_str(_dict(value.get("metadata")).get("phone_number_id")))
            for msg in _list(value.get("messages")):
                try:
                    batch.messages.append(decode_message(msg, phone_number_id))
                except PayloadError as exc:
                    batch.invalid.append(str(exc))
            for status in _list(value.get("statuses")):
                status = _dict(status)
                wamid, state = _str(status.get("id")), _str(status.get("status"))
                if not wamid or not state:
                    batch.invalid.append("status without id or status")
                    continue
                if not _is_unicode(wamid):
                    batch.invalid.append("status id is not valid Unicode")
                    continue
                batch.statuses.append(StatusUpdate(wamid, _escaped(state), _escaped(_str(status.get("recipient_id"))) or "",
                                                   _timestamp(status.get("timestamp")),
                                                   _errors(status.get("errors"))))
            batch.errors.extend(_errors(value.get("errors")))
    return batch
