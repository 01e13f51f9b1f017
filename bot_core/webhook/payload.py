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

from bot_core.identity import BSUID_MAX, PHONE_MAX, is_bsuid, is_phone

# Every kind the bot tells apart; what it does with each is decided in one place,
# bot_core/conversation/kinds.py (and the table in docs/whatsapp.md).
MESSAGE_KINDS = ("text", "interactive", "button", "image", "audio", "video", "document",
                 "sticker", "location", "contacts", "reaction", "order", "nfm_reply",
                 "call_permission_reply", "edit", "revoke", "system", "unsupported")
STATUS_KINDS = ("sent", "delivered", "read", "failed")
_INTERACTIVE_KINDS = {"nfm_reply": "nfm_reply", "call_permission_reply": "call_permission_reply"}


class PayloadError(ValueError):
    """The body is JSON but not a webhook envelope we can read."""


@dataclass(frozen=True)
class ApiError:
    """An error object as Meta sends it in a webhook (code, title, message, details)."""

    code: int | None
    title: str
    message: str = ""
    details: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """One inbound message. The sender is known by phone (``telefono``, Meta's ``from``),
    by business-scoped user ID (``user_id``), or both; ``user_key`` is the BSUID when
    present, else the phone."""

    message_id: str
    telefono: str | None
    kind: str  # one of MESSAGE_KINDS ("unsupported" for any type we do not know)
    timestamp: datetime
    text: str | None = None
    reply_id: str | None = None
    raw_type: str = ""
    phone_number_id: str | None = None
    errors: tuple[ApiError, ...] = ()
    user_id: str | None = None
    parent_user_id: str | None = None
    ref_id: str | None = None  # the message an edit, revoke or reaction refers to
    new_telefono: str | None = None  # system user_changed_number: the new phone
    new_user_id: str | None = None  # system messages that carry the user's new BSUID

    def __post_init__(self) -> None:
        if not (self.user_id or self.telefono):
            raise ValueError("an inbound message needs a phone or a user id")

    @property
    def user_key(self) -> str:
        return self.user_id or self.telefono or ""

    def to_json(self) -> dict[str, Any]:
        """What the inbox stores (Payload) so any process can process it later."""
        return {
            "message_id": self.message_id, "telefono": self.telefono, "kind": self.kind,
            "timestamp": self.timestamp.isoformat(), "text": self.text, "reply_id": self.reply_id,
            "raw_type": self.raw_type, "phone_number_id": self.phone_number_id,
            "user_id": self.user_id, "parent_user_id": self.parent_user_id, "ref_id": self.ref_id,
            "new_telefono": self.new_telefono, "new_user_id": self.new_user_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "InboundMessage":
        return cls(data["message_id"], data.get("telefono"), data["kind"],
                   datetime.fromisoformat(data["timestamp"]), data.get("text"), data.get("reply_id"),
                   data.get("raw_type", ""), data.get("phone_number_id"), (),
                   data.get("user_id"), data.get("parent_user_id"), data.get("ref_id"),
                   data.get("new_telefono"), data.get("new_user_id"))


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status of a message the bot sent (sent, delivered, read, failed)."""

    wamid: str
    status: str  # one of STATUS_KINDS, or whatever new value Meta sends
    recipient: str
    timestamp: datetime
    errors: tuple[ApiError, ...] = ()
    recipient_user_id: str | None = None  # the recipient's BSUID, when Meta sends it


@dataclass(frozen=True)
class Invalid:
    """An item of the delivery that was skipped, and why (for the ``message.invalid`` event)."""

    reason: str
    message_id: str = ""
    kind: str = ""


@dataclass
class WebhookBatch:
    """Everything one webhook delivery carried, decoded, and what was skipped."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)  # items skipped, with the reason


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
    if kind == "reaction":  # an empty or missing emoji is the removal of a reaction
        return _str(_dict(msg.get("reaction")).get("emoji")), None
    if kind == "edit":  # the new content of an edited message: its text or caption
        inner = _dict(_dict(msg.get("edit")).get("message"))
        inner_type = inner.get("type") if isinstance(inner.get("type"), str) else ""
        content = _dict(inner.get(inner_type))
        return _str(content.get("body")) or _str(content.get("caption")), None
    if kind == "nfm_reply":
        return None, None
    if kind == "call_permission_reply":
        reply = _dict(_dict(msg.get("interactive")).get("call_permission_reply"))
        return _str(reply.get("response")), None
    if kind == "system":
        return _str(_dict(msg.get("system")).get("body")), None
    if kind == "location":
        loc = _dict(msg.get("location"))
        parts = [str(loc[k]) for k in ("name", "address") if _str(loc.get(k))]
        return (", ".join(parts) or None), None
    return None, None


def _kind(msg: dict[str, Any], raw_type: str) -> str:
    if raw_type == "interactive":
        inter = _dict(msg.get("interactive"))
        if inter.get("button_reply") or inter.get("list_reply"):
            return "interactive"
        return _INTERACTIVE_KINDS.get(inter.get("type") if isinstance(inter.get("type"), str) else "",
                                      "unsupported")
    return raw_type if raw_type in MESSAGE_KINDS else "unsupported"


def _ref_id(kind: str, msg: dict[str, Any]) -> str | None:
    if kind in ("edit", "revoke"):
        return _str(_dict(msg.get(kind)).get("original_message_id"))
    if kind == "reaction":
        return _str(_dict(msg.get("reaction")).get("message_id"))
    return None


def _sender(msg: dict[str, Any], contact: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(phone, BSUID, parent BSUID): the message's own fields first, then its contact's."""
    telefono = _str(msg.get("from")) or _str(contact.get("wa_id"))
    user_id = _str(msg.get("from_user_id")) or _str(contact.get("user_id"))
    parent = _str(msg.get("from_parent_user_id")) or _str(contact.get("parent_user_id"))
    return telefono, user_id, parent


def decode_message(msg: Any, phone_number_id: str | None,
                   contact: dict[str, Any] | None = None) -> InboundMessage:
    """One message. Its sender may come without a phone (a user with a username): then the
    BSUID (``from_user_id``, or ``user_id`` of its contact) identifies it. Identifiers that
    do not have the documented format make the message invalid."""
    msg = _dict(msg)
    message_id = _str(msg.get("id"))
    telefono, user_id, parent = _sender(msg, contact or {})
    raw_type = msg.get("type") if isinstance(msg.get("type"), str) else ""
    if not message_id:
        raise PayloadError("message without id")
    if len(message_id) > 128:
        raise PayloadError("message id too long")
    if not all(_is_unicode(v) for v in (message_id, telefono, user_id, parent) if v is not None):
        raise PayloadError("message id or phone is not valid Unicode")
    if not telefono and not user_id:
        raise PayloadError("message without a sender (no from, no user_id)")
    if telefono is not None and not is_phone(telefono):
        raise PayloadError(f"sender phone is not 4 to {PHONE_MAX} digits")
    for value in (user_id, parent):
        if value is not None and not is_bsuid(value):
            raise PayloadError(f"user id is not a business-scoped user ID (at most {BSUID_MAX} characters)")
    kind = _kind(msg, raw_type)
    text, reply_id = _text_and_reply(kind, msg)
    text, reply_id, raw_type = _escaped(text), _escaped(reply_id), _escaped(raw_type)
    if text and "\x00" in text:
        # PostgreSQL text cannot hold NUL; every dialect stores the visible U+2400 instead.
        text = text.replace("\x00", "\u2400")
    new_telefono = new_user_id = None
    if kind == "system":
        system = _dict(msg.get("system"))
        new_telefono = _str(system.get("wa_id"))
        new_user_id = _str(system.get("user_id")) or _str(system.get("new_user_id"))
        if new_telefono is not None and not is_phone(new_telefono):
            new_telefono = None  # Meta warns wa_id and phone may differ: keep only a phone
        if new_user_id is not None and not is_bsuid(new_user_id):
            new_user_id = None
    return InboundMessage(message_id, telefono, kind, _timestamp(msg.get("timestamp")), text, reply_id,
                          raw_type, phone_number_id, _errors(msg.get("errors")), user_id, parent,
                          _ref_id(kind, msg), new_telefono, new_user_id)


def _contacts_by_id(contacts: list[Any]) -> dict[str, dict[str, Any]]:
    """contacts[] entries by their phone (wa_id) and BSUID (user_id), built once per change."""
    out: dict[str, dict[str, Any]] = {}
    for entry in map(_dict, contacts):
        for key in (_str(entry.get("wa_id")), _str(entry.get("user_id"))):
            if key:
                out.setdefault(key, entry)
    return out


def _contact_for(msg: Any, by_id: dict[str, dict[str, Any]], contacts: list[Any]) -> dict[str, Any]:
    """The contacts[] entry of a message: matched by phone or BSUID, else the only one."""
    msg = _dict(msg)
    for key in (_str(msg.get("from")), _str(msg.get("from_user_id"))):
        if key and key in by_id:
            return by_id[key]
    return _dict(contacts[0]) if len(contacts) == 1 else {}


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
            contacts = _list(value.get("contacts"))
            by_id = _contacts_by_id(contacts)
            for msg in _list(value.get("messages")):
                try:
                    batch.messages.append(decode_message(msg, phone_number_id, _contact_for(msg, by_id, contacts)))
                except PayloadError as exc:
                    raw = _dict(msg)
                    batch.invalid.append(Invalid(str(exc), (_str(raw.get("id")) or "")[:128],
                                                 (_str(raw.get("type")) or "")[:40]))
            for status in _list(value.get("statuses")):
                status = _dict(status)
                wamid, state = _str(status.get("id")), _str(status.get("status"))
                if not wamid or not state:
                    batch.invalid.append(Invalid("status without id or status"))
                    continue
                if not _is_unicode(wamid):
                    batch.invalid.append(Invalid("status id is not valid Unicode"))
                    continue
                user_id = _str(status.get("recipient_user_id"))
                batch.statuses.append(StatusUpdate(wamid, _escaped(state), _escaped(_str(status.get("recipient_id"))) or "",
                                                   _timestamp(status.get("timestamp")),
                                                   _errors(status.get("errors")),
                                                   user_id if user_id and is_bsuid(user_id) else None))
            batch.errors.extend(_errors(value.get("errors")))
    return batch
