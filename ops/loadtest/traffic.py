"""What the load generator sends: signed deliveries shaped like real users.

Traffic is whole refrigerator-report conversations (a message carrying
everything, "mi refri 4001234 no enfría" (``TrafficSpec.equipment``), then a tap on "Confirmar"), so
reports get created. A conversation's second message is due ``gap_s`` after
its first and, as everything in the open model, is sent at its due time even
if the first is still unanswered (verification then counts that conversation
as confirmed only if the first was acknowledged before the second was sent).
A share of the conversations (``TrafficSpec.bsuid_share``) comes from users without a phone
number: their deliveries carry only a business-scoped user ID (``from_user_id``), as Meta sends
them for users with a username. Duplicates redeliver an existing wamid, either at the same moment
(concurrently) or later; a burst releases N deliveries together.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field

from bot_core.webhook import meta
from bot_core.webhook.signature import sign

FIRST_TEXT = "mi refri {equipment} no enfría"
DEFAULT_EQUIPMENT = "4001234"  # a demo refrigerator (`botctl serve --demo` seeds it)
CONFIRM = ("confirmar", "Confirmar")


@dataclass
class Delivery:
    wamid: str
    telefono: str
    body: bytes
    signature: str
    due: float  # seconds after t0
    conversation: int | None = None
    step: int = 0  # 0 = first message, 1 = confirmation
    duplicate: bool = False
    burst: bool = False
    predecessor: "Delivery | None" = None
    # Filled in by the runner:
    acked: bool = False
    attempts: int = 0
    sent_at: float | None = None  # loop time of the first attempt
    acked_at: float | None = None
    statuses: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TrafficSpec:
    rate: float
    duration_s: float
    warmup_s: float = 0.0
    dup_ratio: float = 0.0
    burst: int = 0
    burst_mode: str = "same-phone"  # same-phone | same-id
    burst_phones: int = 1  # same-phone bursts spread over this many phones
    burst_at_s: float | None = None  # default: start of the measured period
    gap_s: float = 1.0
    seed: int = 1
    equipment: str = DEFAULT_EQUIPMENT  # the SAP code every conversation reports on
    bsuid_share: float = 0.0  # share of conversations from users known only by a BSUID
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8].upper())  # hex


def _run_number(spec: TrafficSpec) -> int:
    """Four digits of the run id: phones of one run never collide with another's."""
    return int(spec.run_id, 16) % 10 ** 4 if spec.run_id.isalnum() else 0


def sender_id(spec: TrafficSpec, conversation: int) -> str:
    """Who a conversation comes from: a phone, or for ``bsuid_share`` of them a BSUID only
    (chosen by a fixed spread of the conversation number, so the plan stays reproducible)."""
    if spec.bsuid_share > 0 and (conversation * 2654435761) % 1000 < spec.bsuid_share * 1000:
        return f"MX.LT{spec.run_id}{conversation:06d}"
    return f"52{_run_number(spec):04d}{conversation:06d}"


def _signed(app_secret: str, message: dict) -> tuple[bytes, str]:
    body = json.dumps(meta.envelope([message]), separators=(",", ":")).encode()
    return body, sign(body, app_secret)


def build_plan(spec: TrafficSpec, app_secret: str) -> list[Delivery]:
    rng = random.Random(spec.seed)
    total = int(spec.rate * (spec.warmup_s + spec.duration_s))
    gap = max(1, round(spec.rate * spec.gap_s))
    deliveries: list[Delivery] = []
    firsts: dict[int, Delivery] = {}
    for slot in range(total):
        block, offset = divmod(slot, 2 * gap)
        step = 0 if offset < gap else 1
        conversation = block * gap + (offset % gap)
        telefono = sender_id(spec, conversation)  # a phone, or a BSUID for a user without one
        wamid = f"wamid.LT{spec.run_id}.{conversation}.{step}"
        if step == 0:
            message = meta.text_message(telefono, FIRST_TEXT.format(equipment=spec.equipment), wamid=wamid)
        else:
            message = meta.reply_message(telefono, *CONFIRM, wamid=wamid)
        body, signature = _signed(app_secret, message)
        d = Delivery(wamid, telefono, body, signature, slot / spec.rate, conversation, step,
                     predecessor=firsts.get(conversation) if step == 1 else None)
        if step == 0:
            firsts[conversation] = d
        elif d.predecessor is None:
            continue  # the run ended before this conversation's first message
        deliveries.append(d)
        if spec.dup_ratio and rng.random() < spec.dup_ratio:
            later = rng.random() < 0.5
            due = d.due + (rng.uniform(0.2, 2.0) if later else 0.0)
            deliveries.append(Delivery(d.wamid, telefono, body, signature, due, conversation, step,
                                       duplicate=True, predecessor=d.predecessor))
    deliveries.extend(build_burst(spec, app_secret))
    deliveries.sort(key=lambda d: d.due)
    return deliveries


def build_burst(spec: TrafficSpec, app_secret: str) -> list[Delivery]:
    if spec.burst <= 0:
        return []
    at = spec.warmup_s if spec.burst_at_s is None else spec.burst_at_s
    out = []
    for k in range(spec.burst):
        telefono = f"53{_run_number(spec):04d}{999999 - k % max(1, spec.burst_phones):06d}"
        wamid = f"wamid.LT{spec.run_id}.burst.{0 if spec.burst_mode == 'same-id' else k}"
        body, signature = _signed(app_secret, meta.text_message(telefono, f"hola {k}", wamid=wamid))
        out.append(Delivery(wamid, telefono, body, signature, at, burst=True,
                            duplicate=spec.burst_mode == "same-id" and k > 0))
    return out
