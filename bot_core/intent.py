"""The understanding of a message, behind one interface.

``RulesIntentService`` is the offline Spanish rules understanding and the
fallback of every AI provider (see ``bot_core.ai`` for those). It needs the
session state: the processor reads the text in every state before its transaction
(off the event loop when long) and picks, inside, the state it read.
"""

from __future__ import annotations

from typing import Protocol

from bot_core.conversation import rules
from bot_core.conversation.model import Understanding


class IntentService(Protocol):
    """What the processor asks. ``remote`` services are called outside any transaction."""

    provider: str
    remote: bool

    async def understand(self, text: str | None, estado: str | None) -> Understanding | None:
        """An understanding, or None to let the rules decide with the session state."""
        ...

    async def interpret_term(self, term: str, estado: str | None = None) -> str | None:
        """What kind of equipment a free-text term names (REFRIGERADOR, VEHICULO), or None."""
        ...


class RulesIntentService:
    provider = "rules"
    remote = False

    async def understand(self, text: str | None, estado: str | None) -> Understanding | None:
        return None  # the processor applies the rules with the state it reads in the commit

    async def interpret_term(self, term: str, estado: str | None = None) -> str | None:
        return None  # the rules' own vocabulary already had its say

    @staticmethod
    def rules(text: str | None, reply_id: str | None, estado: str) -> Understanding:
        return rules.understand(text, reply_id, estado)

    @staticmethod
    def rules_in_every_state(text: str | None, reply_id: str | None) -> dict[str, Understanding]:
        return rules.understand_in_every_state(text, reply_id)
