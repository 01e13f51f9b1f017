"""The conversation's functional core: values in, a Transition out; no I/O, clock or randomness.

The shell loads the session, understands the message (AI, or `understand`) against
`effective_state(session, now, idle_minutes)`, reads the rows `needed_lookups` names into
Facts, calls `step`, and commits the Transition with its effects.
"""

from .model import (
    INTENTS, KINDS, STATES, CreateReport, Equipo, Facts, Inbound, Lookups, Reply, ReportStatus,
    Session, Transition, Understanding,
)  # fmt: skip
from .rules import understand
from .step import effective_state, needed_lookups, step, ticket_number

__all__ = [
    "INTENTS", "KINDS", "STATES", "CreateReport", "Equipo", "Facts", "Inbound", "Lookups",
    "Reply", "ReportStatus", "Session", "Transition", "Understanding",
    "effective_state", "needed_lookups", "step", "ticket_number", "understand",
]  # fmt: skip
