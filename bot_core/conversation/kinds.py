"""What the bot does with each kind of inbound message: the one place that decides it.

docs/whatsapp.md holds the same table for people. Three behaviours:

* ``READ``: the message is a request; its text (or the option tapped) goes through the
  conversation.
* ``SILENT``: an event, not a request (a reaction or its removal, a revoked message, a
  system notice such as a number change): recorded exactly once, answered with nothing
  (every reply is a billable message and none of them would fit).
* ``ANSWER``: a message the bot cannot read (media, a location, a shared contact, an
  order, a flow, a call-permission reply, an unknown type): one reply that fits its kind,
  and the step the user was at is kept.

An ``edit`` is READ when it changes the user's last message (the text the bot was
waiting on an answer to), else SILENT.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import replies as r

READ, SILENT, ANSWER = "read", "silent", "answer"

BEHAVIOUR: Mapping[str, str] = {
    "text": READ,
    "interactive": READ,
    "button": READ,
    "edit": READ,  # only when it edits the user's last message (see edit_is_awaited)
    "reaction": SILENT,  # an empty emoji is the removal of a reaction: SILENT as well
    "revoke": SILENT,
    "system": SILENT,  # user_changed_number (moves the session), identity changes, others
    "image": ANSWER,
    "video": ANSWER,
    "audio": ANSWER,
    "document": ANSWER,
    "sticker": ANSWER,
    "location": ANSWER,
    "contacts": ANSWER,
    "order": ANSWER,
    "nfm_reply": ANSWER,
    "call_permission_reply": ANSWER,
    "unsupported": ANSWER,
}
KINDS = frozenset(BEHAVIOUR)

# The reply of each ANSWER kind (Spanish, in replies.py with every other text).
ANSWER_NOTES: Mapping[str, str] = {
    "image": r.MEDIA_NOTE,
    "video": r.MEDIA_NOTE,
    "audio": r.AUDIO_NOTE,
    "document": r.MEDIA_NOTE,
    "sticker": r.STICKER_NOTE,
    "location": r.LOCATION_NOTE,
    "contacts": r.CONTACTS_NOTE,
    "order": r.ORDER_NOTE,
    "nfm_reply": r.FLOW_NOTE,
    "call_permission_reply": r.CALL_PERMISSION_NOTE,
    "unsupported": r.UNSUPPORTED,
}


def behaviour(kind: str, edits_last_message: bool = False) -> str:
    if kind == "edit":
        return READ if edits_last_message else SILENT
    return BEHAVIOUR.get(kind, ANSWER)
