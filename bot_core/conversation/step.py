"""The conversation as a pure function: step(session, inbound, understanding, facts) -> Transition.

Both reports are slot filling: a flow lists the fields it needs, each with the state that
asks for it, and the next state is always the first field still missing (or the flow's
confirmation). A table maps every state to its handler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from . import kinds
from . import replies as r
from .model import (
    CANCELAR, CONFIRMAR, CONSULTAR_ESTADO, INICIO, NEGAR, OTRO, READABLE_KINDS, REFRI_CONFIRMAR,
    REFRI_ESPERA_PROBLEMA, REFRI_ESPERA_SAP, REFRIGERADOR, REPORTAR_FALLA, REPORTE_REFRIGERADOR,
    REPORTE_VEHICULO, STATES, VEHICULO, BTN_CAMBIAR, BTN_SEGUIR, VEHICULO_CONFIRMAR, VEHICULO_ESPERA_EMPLEADO,
    VEHICULO_ESPERA_PLACA, VEHICULO_ESPERA_PROBLEMA, CreateReport, Facts, Inbound, Lookups,
    Reply, Session, Transition, Understanding,
)  # fmt: skip
from .rules import INTENT_BY_REPLY_ID, clean_entities, fold, is_description

__all__ = ["STATES", "effective_state", "needed_lookups", "step", "ticket_number"]

SLOT_KEYS = ("codigo_sap", "numero_empleado", "placa", "problema")


@dataclass(frozen=True)
class Flow:
    """One report flow (refrigerator or vehicle): the slots it asks for, in order."""

    tipo: str
    intent: str
    prefix: str
    slots: tuple[tuple[str, str], ...]  # (datos key, state that asks for it)
    confirm: str

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(state for _, state in self.slots) + (self.confirm,)

    def next_state(self, datos: Mapping[str, Any], equipo_id: int | None) -> str:
        for key, state in self.slots:
            if not datos.get(key) or (key == "codigo_sap" and equipo_id is None):
                return state
        return self.confirm


REFRI = Flow(
    REFRIGERADOR, REPORTE_REFRIGERADOR, "REF",
    (("codigo_sap", REFRI_ESPERA_SAP), ("problema", REFRI_ESPERA_PROBLEMA)),
    REFRI_CONFIRMAR,
)  # fmt: skip
VEHICLE = Flow(
    VEHICULO, REPORTE_VEHICULO, "VEH",
    (("numero_empleado", VEHICULO_ESPERA_EMPLEADO), ("placa", VEHICULO_ESPERA_PLACA),
     ("problema", VEHICULO_ESPERA_PROBLEMA)),
    VEHICULO_CONFIRMAR,
)  # fmt: skip
FLOW_OF_STATE = {state: flow for flow in (REFRI, VEHICLE) for state in flow.states}
FLOW_OF_INTENT = {flow.intent: flow for flow in (REFRI, VEHICLE)}
FLOW_OF_TIPO = {flow.tipo: flow for flow in (REFRI, VEHICLE)}
PENDING_SWITCH = "cambio"  # datos key: the report the user was asked to switch to


@dataclass(frozen=True)
class Ctx:
    """One message to decide on, the session already normalised (and reset if it expired)."""

    estado: str
    datos: Mapping[str, str]
    equipo_id: int | None
    inbound: Inbound
    intent: str
    entities: Mapping[str, str]
    facts: Facts


@dataclass(frozen=True)
class Outcome:
    """A flow handler's decision, before step() turns it into a Transition."""

    estado: str
    datos: Mapping[str, str]
    equipo_id: int | None
    reply: Reply
    event: str
    effects: tuple[CreateReport, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)


def step(
    session: Session, inbound: Inbound, understanding: Understanding, facts: Facts
) -> Transition:
    """Decide on one inbound message. Never raises for valid values; replies to every
    request, and to nothing that is not one (conversation/kinds.py)."""
    edits_last = inbound.ref_id is not None and inbound.ref_id == facts.last_message_id
    if kinds.behaviour(inbound.kind, edits_last) == kinds.SILENT:
        return _silent(session, inbound)
    ctx, events, lead = _prepare(session, inbound, understanding, facts)
    outcome = _decide(ctx)
    changed = (outcome.estado, outcome.datos) != (session.estado, ctx.datos) or outcome.effects
    audit_events = events + (outcome.event,)
    return Transition(
        estado_anterior=session.estado,
        estado_nuevo=outcome.estado,
        datos=dict(outcome.datos),
        equipo_id_temp=outcome.equipo_id,
        replies=lead + (outcome.reply,),
        effects=outcome.effects,
        descripcion=r.audit(audit_events, session.estado, outcome.estado, **outcome.values),
        origen_accion="SISTEMA" if events else "USUARIO" if changed else "BOT",
    )


def _silent(session: Session, inbound: Inbound) -> Transition:
    """An event that is not a request: the session is left exactly as it was, no reply."""
    estado = session.estado if session.estado in STATES else INICIO
    return Transition(
        estado_anterior=session.estado,
        estado_nuevo=estado,
        datos=_clean_datos(session.datos),
        equipo_id_temp=session.equipo_id_temp if type(session.equipo_id_temp) is int else None,
        replies=(),
        effects=(),
        descripcion=r.audit(("ignored",), estado, estado, kind=inbound.kind),
        origen_accion="SISTEMA",
    )


def ticket_number(prefix: str, message_id: str, when: datetime) -> str:
    """REF-YYYYMMDD-XXXXXXXX: the UTC date of the message and 8 hex of sha256(message id)."""
    day = _utc(when)
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:8].upper()
    return f"{prefix}-{day.year:04d}{day.month:02d}{day.day:02d}-{digest}"


def effective_state(session: Session, now: datetime, idle_minutes: int = 30) -> str:
    """The state step() will handle the next message in: INICIO once the session went idle
    or holds an unknown state. Understand the message against this state, not session.estado."""
    if session.estado not in STATES or _expired(session.ultima_actividad, now, idle_minutes):
        return INICIO
    return session.estado


def needed_lookups(understanding: Understanding) -> Lookups:
    """The Equipos (by CodigoSAP) and Reportes (by NumeroTicket) to put into Facts."""
    entities = clean_entities(understanding.entities)
    sap, ticket = entities.get("codigo_sap"), entities.get("ticket")
    return Lookups((sap,) if sap else (), (ticket,) if ticket else ())


# -- preparation ---------------------------------------------------------------------------


def _prepare(session: Session, inbound: Inbound, understanding: Understanding, facts: Facts):
    """The context to decide in, the system events (reset, expiry) and the replies they add."""
    datos = _clean_datos(session.datos)
    equipo_id = session.equipo_id_temp if type(session.equipo_id_temp) is int else None
    events: tuple[str, ...] = ()
    lead: tuple[Reply, ...] = ()
    estado = session.estado
    if estado not in STATES:
        events = ("reset",)
    elif (estado != INICIO or datos) and _expired(
        session.ultima_actividad, facts.now, facts.idle_minutes
    ):
        events, lead = ("expired",), (r.text(r.EXPIRED),)
    if events:
        estado, datos, equipo_id = INICIO, {}, None
    entities = clean_entities(understanding.entities)
    intent = understanding.intent
    picked = _picked_option(estado, datos, inbound)
    if picked is not None:  # "1" or an option's title typed instead of tapped
        inbound = replace(inbound, reply_id=picked)
        intent, entities = INTENT_BY_REPLY_ID[picked], {}
    ctx = Ctx(estado, datos, equipo_id, inbound, intent, entities, facts)
    return ctx, events, lead


def _picked_option(estado: str, datos: Mapping[str, str], inbound: Inbound) -> str | None:
    """The id of the option just offered that a typed number or title names, if any."""
    if inbound.reply_id is not None or not isinstance(inbound.text, str) or len(inbound.text) > 40:
        return None
    options = r.offered_options(estado, datos)
    typed = " ".join(fold(inbound.text)[0].split()).strip(" .)*")
    if typed.isdigit() and 1 <= int(typed) <= len(options):
        return options[int(typed) - 1][0]
    titles = {" ".join(fold(title)[0].split()): option_id for option_id, title in options}
    return titles.get(typed)


def _clean_datos(datos: object) -> dict[str, str]:
    if not isinstance(datos, Mapping):
        return {}
    clean = clean_entities({k: v for k, v in datos.items() if k in SLOT_KEYS})
    label = datos.get("equipo_descripcion")
    if isinstance(label, str) and label:
        clean["equipo_descripcion"] = label
    if datos.get(PENDING_SWITCH) in FLOW_OF_TIPO:
        clean[PENDING_SWITCH] = datos[PENDING_SWITCH]
    return clean


def _utc(moment: datetime) -> datetime:
    """Aware in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # at the edges of datetime's range
        return moment.replace(tzinfo=timezone.utc)


def _expired(last: datetime | None, now: datetime, idle_minutes: int) -> bool:
    if not isinstance(last, datetime):
        return False
    return (_utc(now) - _utc(last)).total_seconds() > idle_minutes * 60


# -- decision ------------------------------------------------------------------------------


def _decide(ctx: Ctx) -> Outcome:
    if ctx.intent == CANCELAR:
        return _cancel(ctx)
    if ctx.inbound.kind not in READABLE_KINDS:
        note = kinds.ANSWER_NOTES.get(ctx.inbound.kind, r.UNSUPPORTED)
        return _stay(ctx, note, "unsupported", kind=ctx.inbound.kind)
    if PENDING_SWITCH in ctx.datos:
        answered = _answer_switch(ctx)
        if answered is not None:
            return answered
        ctx = replace(ctx, datos=_without_switch(ctx.datos))  # anything else: the question lapses
    if ctx.intent == CONSULTAR_ESTADO:
        return _status(ctx)
    return HANDLERS[ctx.estado](ctx)


def _inicio(ctx: Ctx) -> Outcome:
    flow = FLOW_OF_INTENT.get(ctx.intent)
    if flow is None and ctx.intent in (REPORTAR_FALLA, OTRO):
        flow = _flow_of_entities(ctx.entities)
    if flow is None:
        return _stay(ctx, r.MENU_NOTES.get(ctx.intent, r.EXPECTED[INICIO]), "menu")
    return _start(ctx, flow)


def _collect(ctx: Ctx) -> Outcome:
    flow = FLOW_OF_STATE[ctx.estado]
    other = FLOW_OF_INTENT.get(ctx.intent, flow)
    describing = ctx.estado in (REFRI_ESPERA_PROBLEMA, VEHICULO_ESPERA_PROBLEMA)
    if other is not flow and (ctx.inbound.reply_id or not describing):
        return _ask_switch(ctx, flow, other)
    return _advance(ctx, flow, ctx.datos, ctx.equipo_id, overwrite=False)


def _confirm(ctx: Ctx) -> Outcome:
    flow = FLOW_OF_STATE[ctx.estado]
    other = FLOW_OF_INTENT.get(ctx.intent, flow)
    if ctx.intent == NEGAR:
        return _cancel(ctx)
    if other is not flow:
        return _ask_switch(ctx, flow, other)
    if ctx.intent == CONFIRMAR and flow.next_state(ctx.datos, ctx.equipo_id) == flow.confirm:
        return _create(ctx, flow)
    return _advance(ctx, flow, ctx.datos, ctx.equipo_id, overwrite=True)


HANDLERS: Mapping[str, Callable[[Ctx], Outcome]] = {
    INICIO: _inicio,
    **{state: _collect for flow in (REFRI, VEHICLE) for state in flow.states[:-1]},
    REFRI_CONFIRMAR: _confirm,
    VEHICULO_CONFIRMAR: _confirm,
}


def _ask_switch(ctx: Ctx, current: Flow, other: Flow) -> Outcome:
    """Mid-report, a message (an old menu tap included) would start another report: ask first."""
    datos = {**ctx.datos, PENDING_SWITCH: other.tipo}
    body = r.SWITCH_QUESTION.format(actual=r.TYPE_NAMES[current.tipo], nuevo=r.TYPE_NAMES[other.tipo])
    return Outcome(ctx.estado, datos, ctx.equipo_id, r.buttons(body, r.SWITCH_OPTIONS), "switch_asked")


def _answer_switch(ctx: Ctx) -> Outcome | None:
    """The answer to "switch reports?": yes starts the other report, no goes on with this one."""
    reply_id, typed = ctx.inbound.reply_id, ctx.inbound.reply_id is None
    datos = _without_switch(ctx.datos)
    if reply_id == BTN_CAMBIAR or (typed and ctx.intent == CONFIRMAR):
        return _start(replace(ctx, datos=datos), FLOW_OF_TIPO[ctx.datos[PENDING_SWITCH]])
    if reply_id == BTN_SEGUIR or (typed and ctx.intent == NEGAR):
        return Outcome(ctx.estado, datos, ctx.equipo_id, r.prompt(ctx.estado, datos, [r.KEEP_GOING]),
                       "switch_declined")
    return None


def _without_switch(datos: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in datos.items() if k != PENDING_SWITCH}


def _start(ctx: Ctx, flow: Flow) -> Outcome:
    return _advance(ctx, flow, {}, None, overwrite=False, start=True)


def _advance(ctx, flow: Flow, datos, equipo_id, *, overwrite: bool, start: bool = False) -> Outcome:
    """Take what the message brings to `flow`, then ask for the first thing still missing."""
    datos, equipo_id, notes, progressed = _merge(ctx, flow, datos, equipo_id, overwrite)
    if start:
        notes.insert(0, r.START[flow.tipo])
    estado = flow.next_state(datos, equipo_id)
    if not start and not notes and (not progressed or estado == ctx.estado):
        # Nothing for what this step asks: say what it expects (the step is kept).
        notes.append(r.FLOW_NOTES.get(ctx.intent, r.EXPECTED.get(ctx.estado, r.NOT_UNDERSTOOD)))
    event = "start" if start else "data" if progressed else "reprompt"
    return Outcome(estado, datos, equipo_id, r.prompt(estado, datos, filter(None, notes)), event)


def _merge(ctx: Ctx, flow: Flow, datos, equipo_id, overwrite: bool):
    entities = dict(ctx.entities)
    if "problema" not in entities and _describes(ctx, flow):
        entities["problema"] = ctx.inbound.text.strip()
    datos, notes, progressed = dict(datos), [], False
    for key, _ in flow.slots:
        # Fill what is missing; at confirmation also correct codes, never the description.
        replaceable = not datos.get(key) or (overwrite and key != "problema")
        if key not in entities or not replaceable:
            continue
        if key == "codigo_sap":
            found, note = _equipo(ctx.facts, entities[key])
            notes.append(note)
            if found is None:
                continue
            datos["equipo_descripcion"] = r.equipo_label(found.descripcion, found.ubicacion)
            equipo_id = found.equipo_id
        datos[key] = entities[key]
        progressed = True
    return datos, equipo_id, notes, progressed


def _describes(ctx: Ctx, flow: Flow) -> bool:
    """The message answers 'describe the fault' though the understanding found no problema."""
    text = ctx.inbound.text
    return (
        ctx.estado == flow.slots[-1][1]
        and ctx.inbound.reply_id is None
        and ctx.intent in (OTRO, REPORTAR_FALLA, flow.intent)
        and isinstance(text, str)
        and is_description(text)
    )


def _equipo(facts: Facts, codigo: str):
    equipo = facts.equipos.get(codigo)
    if equipo is None:
        return None, r.SAP_NOT_FOUND.format(codigo=codigo)
    if not equipo.activo:
        return None, r.SAP_INACTIVE.format(codigo=codigo)
    label = r.equipo_label(equipo.descripcion, equipo.ubicacion)
    return equipo, r.SAP_OK.format(codigo=codigo, equipo=label)


def _flow_of_entities(entities: Mapping[str, str]) -> Flow | None:
    if "codigo_sap" in entities:
        return REFRI
    if "placa" in entities or "numero_empleado" in entities:
        return VEHICLE
    return None


def _create(ctx: Ctx, flow: Flow) -> Outcome:
    ticket = ticket_number(flow.prefix, ctx.inbound.message_id, ctx.inbound.timestamp)
    datos = ctx.datos
    effect = CreateReport(
        numero_ticket=ticket,
        tipo_reporte=flow.tipo,
        equipo_id=ctx.equipo_id if flow is REFRI else None,
        numero_empleado=datos.get("numero_empleado"),
        descripcion=(
            datos["problema"] if flow is REFRI
            else r.VEHICLE_DESCRIPTION.format(placa=datos["placa"], problema=datos["problema"])
        ),
    )  # fmt: skip
    reply = r.created(flow.tipo, ticket)
    return Outcome(INICIO, {}, None, reply, "created", (effect,), {"ticket": ticket})


def _cancel(ctx: Ctx) -> Outcome:
    idle = ctx.estado == INICIO and not ctx.datos
    note = r.NOTHING_TO_CANCEL if idle else r.CANCELLED
    return Outcome(INICIO, {}, None, r.prompt(INICIO, {}, [note]), "cancel")


def _status(ctx: Ctx) -> Outcome:
    ticket = ctx.entities.get("ticket")
    status = ctx.facts.reportes.get(ticket) if ticket else None
    if status is not None and not (ctx.facts.supervisor or status.owners & ctx.facts.viewer):
        status = None  # another user's ticket: the same answer as for one that does not exist
    if ticket is None:
        note = r.ASK_TICKET
    elif status is None:
        note = r.UNKNOWN_TICKET.format(ticket=ticket)
    else:
        note = r.report_status(status)
    if ctx.estado == INICIO and not ctx.datos:  # an answer, not the whole menu again
        return Outcome(INICIO, {}, None, r.text(note), "status")
    return _stay(ctx, note, "status")


def _stay(ctx: Ctx, note: str, event: str, **values: str) -> Outcome:
    reply = r.prompt(ctx.estado, ctx.datos, [note])
    return Outcome(ctx.estado, ctx.datos, ctx.equipo_id, reply, event, (), values)
