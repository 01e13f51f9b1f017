"""The conversation, functional core: pure values in, a Transition out (no I/O, clock or randomness).

The shell loads the session, understands the message (AI or `understand`), reads the facts
`needed_lookups` names, calls `step`, and commits the Transition.
"""

from .model import (
    INTENTS, KINDS, STATES, CreateReport, Equipo, Facts, Inbound, Lookups, Reply, ReportStatus,
    Session, Transition, Understanding,
)  # fmt: skip
from .rules import understand
from .step import needed_lookups, step, ticket_number

__all__ = [
    "INTENTS", "KINDS", "STATES", "CreateReport", "Equipo", "Facts", "Inbound", "Lookups",
    "Reply", "ReportStatus", "Session", "Transition", "Understanding",
    "needed_lookups", "step", "ticket_number", "understand",
]  # fmt: skip
