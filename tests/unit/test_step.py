"""The conversation core: every state against every kind of input, both flows, and properties."""

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot_core.conversation import kinds
from bot_core.conversation import replies as r
from bot_core.conversation.model import (
    CONFIRM_STATES, ENTITY_KEYS, INTENTS, KINDS, PROBLEM_STATES, READABLE_KINDS, SOURCES,
    CreateReport, Equipo, Facts, Inbound, Reply, ReportStatus, Session, Understanding,
)  # fmt: skip
from bot_core.conversation.rules import INTENT_BY_REPLY_ID, understand
from bot_core.conversation.step import STATES, effective_state, needed_lookups, step, ticket_number

NOW = datetime(2026, 11, 28, 15, 0)
PHONE = "5215512345678"
EQUIPO = Equipo(7, "4001234", "REFRIGERADOR", "Refrigerador Imbera 2 puertas", "Tienda Centro", True)
BAJA = Equipo(8, "4009999", "REFRIGERADOR", "Enfriador viejo", None, False)
REPORTE = ReportStatus("REF-20261127-0A1B2C3D", "REFRIGERADOR", "EN_PROCESO", datetime(2026, 11, 27, 9),
                       frozenset({PHONE}))
FACTS = Facts(NOW, {e.codigo_sap: e for e in (EQUIPO, BAJA)}, {REPORTE.numero_ticket: REPORTE},
              viewer=frozenset({PHONE}))
TICKET = re.compile(r"(REF|VEH)-\d{8}-[0-9A-F]{8}")

LABEL = r.equipo_label(EQUIPO.descripcion, EQUIPO.ubicacion)
REFRI_SAP = {"codigo_sap": "4001234", "equipo_descripcion": LABEL}
REFRI_FULL = {**REFRI_SAP, "problema": "no enfría"}
VEH_EMP = {"numero_empleado": "12345"}
VEH_PLACA = {**VEH_EMP, "placa": "ABC-123"}
VEH_FULL = {**VEH_PLACA, "problema": "no arranca"}
# A consistent (datos, equipo_id_temp) for every state.
DATOS = {
    "INICIO": ({}, None),
    "REFRI_ESPERA_SAP": ({}, None),
    "REFRI_ESPERA_PROBLEMA": (REFRI_SAP, 7),
    "REFRI_CONFIRMAR": (REFRI_FULL, 7),
    "VEHICULO_ESPERA_EMPLEADO": ({}, None),
    "VEHICULO_ESPERA_PLACA": (VEH_EMP, None),
    "VEHICULO_ESPERA_PROBLEMA": (VEH_PLACA, None),
    "VEHICULO_CONFIRMAR": (VEH_FULL, None),
}
FIRST = {"REFRI": "REFRI_ESPERA_SAP", "VEHICULO": "VEHICULO_ESPERA_EMPLEADO"}


def session(estado="INICIO", datos=None, equipo_id=None, last=NOW - timedelta(minutes=1)):
    default_datos, default_equipo = DATOS.get(estado, ({}, None))
    datos = default_datos if datos is None else datos
    equipo_id = default_equipo if equipo_id is None and datos is default_datos else equipo_id
    return Session(PHONE, estado, dict(datos), equipo_id, 3, 5, last)


def inbound(text=None, kind="text", reply_id=None, mid="wamid.HBgM1", ts=NOW):
    return Inbound(mid, PHONE, kind, text, reply_id, ts)


def say(current, text=None, reply_id=None, kind="text", facts=FACTS, **kw):
    """One message through the rules understanding and step, as the shell runs them."""
    message = inbound(text, kind, reply_id, **kw)
    estado = effective_state(current, facts.now, facts.idle_minutes)
    return step(current, message, understand(text, reply_id, estado), facts)


def after(current, transition, when=NOW):
    return Session(
        current.telefono, transition.estado_nuevo, transition.datos, transition.equipo_id_temp,
        current.contador_mensajes + 1, current.version + 1, when,
    )  # fmt: skip


def talk(*messages, start=None):
    """A conversation: each message is text or ("button", reply_id); returns every transition."""
    current, transitions = start or Session.new(PHONE), []
    for n, message in enumerate(messages):
        text, reply_id = (None, message[1]) if isinstance(message, tuple) else (message, None)
        kind = "interactive" if reply_id else "text"
        transitions.append(say(current, text, reply_id, kind, mid=f"wamid.{n}"))
        current = after(current, transitions[-1])
    return transitions


def body(transition):
    return "\n".join(reply.text for reply in transition.replies)


# -- every state x every kind of input -------------------------------------------------------


@pytest.mark.parametrize("estado", STATES)
@pytest.mark.parametrize("kind", sorted(k for k in KINDS if kinds.BEHAVIOUR[k] == kinds.ANSWER))
def test_what_the_bot_cannot_read_gets_a_reply_fitting_its_kind_and_changes_nothing(estado, kind):
    current = session(estado)
    transition = step(current, inbound(None, kind), Understanding("OTRO", {}, 0.0, "fallback"), FACTS)
    assert transition.estado_nuevo == estado
    assert (transition.datos, transition.equipo_id_temp) == (current.datos, current.equipo_id_temp)
    assert kinds.ANSWER_NOTES[kind] in body(transition) and not transition.effects
    assert transition.origen_accion == "BOT"


@pytest.mark.parametrize("estado", STATES)
@pytest.mark.parametrize("kind, text", [("reaction", "👍"), ("reaction", None), ("revoke", None),
                                        ("system", "User A changed from 1 to 2"), ("edit", "4001234")])
def test_events_that_are_not_requests_get_no_reply_and_change_nothing(estado, kind, text):
    current = session(estado, last=NOW - timedelta(hours=5))  # not even an expired session is answered
    message = Inbound("wamid.EV", PHONE, kind, text, None, NOW, ref_id="wamid.OLDER")
    transition = step(current, message, understand(text, None, estado), replace(FACTS, last_message_id="wamid.LAST"))
    assert transition.replies == () and not transition.effects
    assert (transition.estado_nuevo, transition.datos) == (estado, current.datos)


def test_every_kind_has_exactly_one_decided_behaviour():
    from bot_core.webhook.payload import MESSAGE_KINDS

    assert set(kinds.BEHAVIOUR) == set(KINDS) == set(MESSAGE_KINDS)
    assert {k for k, b in kinds.BEHAVIOUR.items() if b == kinds.ANSWER} == set(kinds.ANSWER_NOTES)


def test_an_edit_of_the_awaited_text_is_taken_as_the_new_text():
    current = session("REFRI_ESPERA_SAP")
    rejected = say(current, "400123")  # six digits: not a SAP code
    assert rejected.estado_nuevo == "REFRI_ESPERA_SAP"
    edit = Inbound("wamid.ED", PHONE, "edit", "4001234", None, NOW, ref_id="wamid.TYPO")
    transition = step(current, edit, understand("4001234", None, "REFRI_ESPERA_SAP"),
                      replace(FACTS, last_message_id="wamid.TYPO"))
    assert transition.estado_nuevo == "REFRI_ESPERA_PROBLEMA" and transition.datos["codigo_sap"] == "4001234"


def expected_state(estado, intent, via_button):
    """The specification of where an entity-less intent leads from each state."""
    if intent == "CANCELAR" or (estado in CONFIRM_STATES and intent in ("CONFIRMAR", "NEGAR")):
        return "INICIO"
    flow = {"REPORTE_REFRIGERADOR": "REFRI", "REPORTE_VEHICULO": "VEHICULO"}.get(intent)
    if flow and not estado.startswith(flow) and (via_button or estado not in PROBLEM_STATES):
        return FIRST[flow] if estado == "INICIO" else estado  # mid-report: asked first, nothing dropped
    return estado


@pytest.mark.parametrize("estado", STATES)
@pytest.mark.parametrize("intent", INTENTS)
@pytest.mark.parametrize("kind", ["text", "interactive", "button"])
def test_every_state_and_intent(estado, intent, kind):
    reply_id = "x" if kind != "text" else None
    message = inbound("¿?", kind, reply_id)  # no description: entity-less by construction
    transition = step(session(estado), message, Understanding(intent, {}, 0.9, "ai"), FACTS)
    assert transition.estado_nuevo == expected_state(estado, intent, reply_id is not None)
    assert transition.replies and transition.estado_anterior == estado
    created = estado in CONFIRM_STATES and intent == "CONFIRMAR"
    assert bool(transition.effects) == created


@pytest.mark.parametrize("estado", STATES)
@pytest.mark.parametrize("text", ["jajaja", "🙂", "   ", "12", "'; DROP TABLE Reportes;--"])
def test_unknown_input_reprompts_for_what_the_state_waits_for(estado, text):
    transition = say(session(estado), text)
    # Asked for the problem, words (even "jajaja") are the description; no words are not.
    if estado in PROBLEM_STATES and any(ch.isalpha() for ch in text):
        assert transition.estado_nuevo == estado.replace("ESPERA_PROBLEMA", "CONFIRMAR")
        assert transition.datos["problema"] == text.strip()
    else:
        assert transition.estado_nuevo == estado
        assert r.PROMPTS[estado] in transition.replies[-1].text


# -- the flows -------------------------------------------------------------------------------


def test_refrigerator_happy_path_with_buttons():
    hola, refri, sap, problema, confirmado = talk(
        "hola", ("button", "menu_refri"), "4001234", "no enfría y gotea", ("button", "confirmar")
    )
    assert hola.estado_nuevo == "INICIO" and hola.replies[0].options == r.MENU_OPTIONS
    assert refri.estado_nuevo == "REFRI_ESPERA_SAP"
    assert (sap.estado_nuevo, sap.equipo_id_temp) == ("REFRI_ESPERA_PROBLEMA", 7)
    assert problema.estado_nuevo == "REFRI_CONFIRMAR"
    assert problema.replies[-1].options == r.CONFIRM_OPTIONS
    assert "no enfría y gotea" in problema.replies[-1].text and "4001234" in problema.replies[-1].text
    (effect,) = confirmado.effects
    assert effect == CreateReport(
        ticket_number("REF", "wamid.4", NOW), "REFRIGERADOR", 7, None, "no enfría y gotea"
    )
    assert TICKET.fullmatch(effect.numero_ticket) and effect.numero_ticket in body(confirmado)
    assert (confirmado.estado_nuevo, confirmado.datos, confirmado.equipo_id_temp) == ("INICIO", {}, None)
    assert [t.origen_accion for t in (hola, refri, confirmado)] == ["BOT", "USUARIO", "USUARIO"]
    assert effect.numero_ticket in confirmado.descripcion


def test_vehicle_happy_path_with_text():
    *steps, done = talk("vehículo", "12345", "abc-123", "no arranca", "sí")
    assert [t.estado_nuevo for t in steps] == [
        "VEHICULO_ESPERA_EMPLEADO", "VEHICULO_ESPERA_PLACA", "VEHICULO_ESPERA_PROBLEMA",
        "VEHICULO_CONFIRMAR",
    ]  # fmt: skip
    (effect,) = done.effects
    assert (effect.tipo_reporte, effect.equipo_id, effect.numero_empleado) == ("VEHICULO", None, "12345")
    assert effect.descripcion == "Placa ABC-123: no arranca"
    assert effect.numero_ticket.startswith("VEH-20261128-")


@pytest.mark.parametrize(
    "messages, states",
    [
        (["mi refri 4001234 no enfría"], ["REFRI_CONFIRMAR"]),
        (["el camión ABC-123 no arranca, empleado 12345"], ["VEHICULO_CONFIRMAR"]),
        (["mi camión ABC-123 no arranca", "12345"], ["VEHICULO_ESPERA_EMPLEADO", "VEHICULO_CONFIRMAR"]),
        (["refri 4001234"], ["REFRI_ESPERA_PROBLEMA"]),
        (["nevera 5551234 hace ruido", "4001234"], ["REFRI_ESPERA_SAP", "REFRI_CONFIRMAR"]),
        (["empleado 12345", "placa xyz-987"], ["VEHICULO_ESPERA_PLACA", "VEHICULO_ESPERA_PROBLEMA"]),
    ],
)
def test_a_message_carrying_several_answers_skips_their_questions(messages, states):
    assert [t.estado_nuevo for t in talk(*messages)] == states


def test_all_in_one_then_confirm_creates_the_report_it_summarised():
    summary, done = talk("mi refri 4001234 no enfría", "confirmo")
    assert "mi refri no enfría" in summary.replies[-1].text
    assert done.effects[0].descripcion == "mi refri no enfría" and done.effects[0].equipo_id == 7


@pytest.mark.parametrize("estado", STATES)
@pytest.mark.parametrize("how", [("cancelar", None), (None, "cancelar"), ("Quiero cancelar", None)])
def test_cancel_from_every_state(estado, how):
    text, reply_id = how
    transition = say(session(estado), text, reply_id, "interactive" if reply_id else "text")
    assert (transition.estado_nuevo, transition.datos, transition.equipo_id_temp) == ("INICIO", {}, None)
    assert not transition.effects and transition.replies[-1].options == r.MENU_OPTIONS
    note = r.NOTHING_TO_CANCEL if estado == "INICIO" else r.CANCELLED
    assert note in body(transition)


@pytest.mark.parametrize("estado", CONFIRM_STATES)
def test_no_at_confirmation_cancels(estado):
    transition = say(session(estado), "no")
    assert transition.estado_nuevo == "INICIO" and not transition.effects


def test_switching_report_type_with_a_menu_button_asks_before_starting_over():
    current = session("VEHICULO_ESPERA_PROBLEMA")
    asked = say(current, "Refrigerador", "menu_refri", "interactive")
    assert switch_asked(asked) and asked.estado_nuevo == "VEHICULO_ESPERA_PROBLEMA"
    transition = say(after(current, asked), "Sí, cambiar", "cambiar_reporte", "interactive")
    assert (transition.estado_nuevo, transition.datos) == ("REFRI_ESPERA_SAP", {})


def test_tapping_an_old_menu_button_is_not_a_description():
    transition = say(session("REFRI_ESPERA_PROBLEMA"), "Refrigerador", "menu_refri", "interactive")
    assert (transition.estado_nuevo, transition.datos) == ("REFRI_ESPERA_PROBLEMA", REFRI_SAP)


def test_a_description_mentioning_the_other_kind_does_not_switch():
    transition = say(session("VEHICULO_ESPERA_PROBLEMA"), "el refri del camión no enfría")
    assert transition.estado_nuevo == "VEHICULO_CONFIRMAR"
    assert transition.datos["problema"] == "el refri del camión no enfría"


def test_corrections_at_confirmation_update_codes_but_not_the_description():
    transition = say(session("VEHICULO_CONFIRMAR"), "no, la placa correcta es XYZ-987")
    assert transition.estado_nuevo == "VEHICULO_CONFIRMAR"
    assert transition.datos == {**VEH_FULL, "placa": "XYZ-987"}
    assert transition.origen_accion == "USUARIO"


# -- SAP validation --------------------------------------------------------------------------


@pytest.mark.parametrize("code, note", [("5551234", r.SAP_NOT_FOUND), ("4009999", r.SAP_INACTIVE)])
def test_sap_not_found_or_inactive_asks_again(code, note):
    transition = say(session("REFRI_ESPERA_SAP"), code)
    assert (transition.estado_nuevo, transition.equipo_id_temp) == ("REFRI_ESPERA_SAP", None)
    assert note.format(codigo=code) in body(transition)
    assert "codigo_sap" not in transition.datos


def test_a_code_missing_from_the_preloaded_facts_is_not_found():
    transition = say(session("REFRI_ESPERA_SAP"), "4001234", facts=replace(FACTS, equipos={}))
    assert transition.estado_nuevo == "REFRI_ESPERA_SAP"


def test_malformed_ai_entities_are_ignored():
    understood = Understanding("REPORTE_VEHICULO", {"placa": "??", "numero_empleado": "12"}, 0.8, "ai")
    transition = step(session("VEHICULO_ESPERA_EMPLEADO"), inbound("x"), understood, FACTS)
    assert (transition.estado_nuevo, transition.datos) == ("VEHICULO_ESPERA_EMPLEADO", {})


# -- status lookup ---------------------------------------------------------------------------


def test_status_of_a_known_ticket():
    transition = say(session(), f"estado {REPORTE.numero_ticket.lower()}")
    assert r.report_status(REPORTE) in body(transition) and "en proceso" in body(transition)
    assert transition.estado_nuevo == "INICIO"


def test_status_of_an_unknown_ticket():
    transition = say(session(), "estado VEH-20260101-DEADBEEF")
    assert r.UNKNOWN_TICKET.format(ticket="VEH-20260101-DEADBEEF") in body(transition)


def test_status_without_a_ticket_asks_for_it():
    transition = say(session(), None, "menu_estado", "interactive")
    assert r.ASK_TICKET in body(transition)


def test_status_inside_a_flow_answers_and_asks_again():
    transition = say(session("VEHICULO_ESPERA_PLACA"), REPORTE.numero_ticket)
    assert transition.estado_nuevo == "VEHICULO_ESPERA_PLACA" and transition.datos == VEH_EMP
    assert r.report_status(REPORTE) in body(transition)
    assert r.PROMPTS["VEHICULO_ESPERA_PLACA"] in body(transition)


def test_needed_lookups_names_what_to_preload():
    lookups = needed_lookups(understand("mi refri 4001234 no enfría", None, "INICIO"))
    assert (lookups.codigos_sap, lookups.tickets) == (("4001234",), ())
    lookups = needed_lookups(understand("estado ref-20261127-0a1b2c3d", None, "INICIO"))
    assert lookups.tickets == (REPORTE.numero_ticket,)


# -- idle expiry and broken sessions ---------------------------------------------------------


@pytest.mark.parametrize("idle, expired", [(29, False), (30, False), (30.02, True), (600, True)])
def test_idle_sessions_start_over(idle, expired):
    current = session("REFRI_ESPERA_PROBLEMA", last=NOW - timedelta(minutes=idle))
    transition = say(current, "se congela todo")
    assert (r.EXPIRED in body(transition)) == expired
    if expired:
        assert transition.replies[0].text == r.EXPIRED and transition.origen_accion == "SISTEMA"
        assert transition.estado_nuevo == "INICIO" and transition.equipo_id_temp is None
        assert transition.datos == {}
    else:
        assert transition.estado_nuevo == "REFRI_CONFIRMAR"


def test_expiry_then_the_message_is_handled_from_scratch():
    current = session("VEHICULO_ESPERA_PLACA", last=NOW - timedelta(hours=5))
    transition = say(current, "mi refri 4001234 no enfría")
    assert transition.estado_nuevo == "REFRI_CONFIRMAR" and "numero_empleado" not in transition.datos


def test_an_idle_session_at_rest_does_not_announce_expiry():
    assert r.EXPIRED not in body(say(session(last=NOW - timedelta(days=3)), "hola"))


@pytest.mark.parametrize("local_hour, expired", [(8, True), (8.66, False)])
def test_naive_and_aware_clocks_compare(local_hour, expired):
    mexico = timezone(timedelta(hours=-6))  # 08:00 there is 14:00 UTC; NOW is 15:00 UTC (naive)
    last = datetime(2026, 11, 28, tzinfo=mexico) + timedelta(hours=local_hour)
    transition = say(session("REFRI_ESPERA_SAP", last=last), "4001234")
    assert (r.EXPIRED in body(transition)) == expired


def test_effective_state_is_what_step_handles_the_message_in():
    idle = session("VEHICULO_ESPERA_PLACA", last=NOW - timedelta(minutes=31))
    assert effective_state(idle, NOW, 30) == "INICIO"
    assert effective_state(idle, NOW, 60) == "VEHICULO_ESPERA_PLACA"
    assert effective_state(session("LEGACY"), NOW) == "INICIO"


def test_an_unknown_state_is_reset():
    transition = say(session("ESPERANDO_SAP_LEGACY", datos={"x": [1]}), "hola")
    assert (transition.estado_nuevo, transition.origen_accion) == ("INICIO", "SISTEMA")
    assert transition.estado_anterior == "ESPERANDO_SAP_LEGACY"


def test_corrupt_datos_are_asked_for_again_not_trusted():
    current = session("REFRI_CONFIRMAR", datos={"codigo_sap": 4001234, "problema": None}, equipo_id=7)
    transition = say(current, "sí")
    assert not transition.effects and transition.estado_nuevo == "REFRI_ESPERA_SAP"


# -- tickets, literal text, reply limits -----------------------------------------------------


def test_ticket_number_is_the_utc_date_and_a_hash_of_the_message_id():
    digest = hashlib.sha256(b"wamid.HBgM1").hexdigest()[:8].upper()
    assert ticket_number("REF", "wamid.HBgM1", NOW) == f"REF-20261128-{digest}"


def test_ticket_numbers_are_deterministic():
    assert ticket_number("REF", "wamid.A", NOW) == ticket_number("REF", "wamid.A", NOW + timedelta(hours=1))
    assert ticket_number("REF", "wamid.A", NOW) != ticket_number("REF", "wamid.B", NOW)
    assert TICKET.fullmatch(ticket_number("VEH", "wamid.\ud800", NOW))
    late_in_mexico = datetime(2026, 11, 28, 23, 30, tzinfo=timezone(timedelta(hours=-6)))
    assert ticket_number("REF", "m", late_in_mexico).startswith("REF-20261129-")


def test_a_retried_confirmation_creates_the_same_ticket():
    current = session("REFRI_CONFIRMAR")
    first = say(current, "sí", mid="wamid.retry")
    again = say(current, "sí", mid="wamid.retry", facts=replace(FACTS, now=NOW + timedelta(minutes=5)))
    assert first == again and first.effects


def test_an_all_in_one_description_keeps_its_own_spacing():
    transition = say(session(), "la nevera 4001234 hace  ruido\tfuerte")
    assert transition.datos["problema"] == "la nevera hace  ruido\tfuerte"


@pytest.mark.parametrize("text", ["'; DROP TABLE Reportes;--", "😀 ñandú\x00\x1f <script>", "a\u0301bc " * 900])
def test_the_users_description_reaches_the_report_literally(text):
    described, done = talk(text, "sí", start=session("VEHICULO_ESPERA_PROBLEMA"))
    assert described.datos["problema"] == text.strip()
    assert done.effects[0].descripcion == f"Placa ABC-123: {text.strip()}"
    assert all(len(reply.text) <= 1024 for reply in described.replies)


@pytest.mark.parametrize(
    "kind, text, options",
    [
        ("text", "", ()),
        ("text", "x" * 1025, ()),
        ("text", "x", (("a", "A"),)),
        ("buttons", "x", ()),
        ("buttons", "x", tuple((f"b{i}", "B") for i in range(4))),
        ("buttons", "x", (("a", "x" * 21),)),
        ("buttons", "x", (("a", "A"), ("a", "B"))),
        ("buttons", "x", (("", "A"),)),
        ("list", "x", tuple((f"r{i}", "R") for i in range(11))),
        ("list", "x", (("a", "x" * 25),)),
        ("carousel", "x", ()),
    ],
)
def test_reply_rejects_what_whatsapp_rejects(kind, text, options):
    with pytest.raises(ValueError):
        Reply(kind, text, options)


def test_reply_accepts_the_limits():
    Reply("text", "x" * 1024)
    Reply("buttons", "x", tuple((f"b{i}", "x" * 20) for i in range(3)))
    Reply("list", "x", tuple((f"r{i}", "x" * 24) for i in range(10)))


def test_bot_options_fit_whatsapp():
    for options in (r.MENU_OPTIONS, r.CONFIRM_OPTIONS):
        Reply("buttons", "x", options)
    assert {option_id for option_id, _ in r.MENU_OPTIONS + r.CONFIRM_OPTIONS} <= set(INTENT_BY_REPLY_ID)


# -- properties ------------------------------------------------------------------------------

texts = st.text(max_size=60) | st.sampled_from(
    ["hola", "cancelar", "sí", "no", "4001234", "12345", "ABC-123", "mi refri 4001234 no enfría",
     "estado REF-20261127-0A1B2C3D", "no arranca", "'; DROP TABLE Reportes;--"]
)  # fmt: skip
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.none() | st.just(timezone.utc) | st.just(timezone(timedelta(hours=-6))),
)  # fmt: skip
entity_values = st.one_of(
    texts, st.sampled_from(["4001234", "4009999", "5551234", "12345", "abc 123", REPORTE.numero_ticket])
)
understandings = st.builds(
    Understanding,
    intent=st.sampled_from(INTENTS),
    entities=st.dictionaries(st.sampled_from(ENTITY_KEYS), entity_values, max_size=5),
    confidence=st.floats(0, 1),
    source=st.sampled_from(SOURCES),
)
datos = st.dictionaries(
    st.sampled_from(["codigo_sap", "numero_empleado", "placa", "problema", "equipo_descripcion", "x"]),
    st.none() | st.integers() | entity_values,
    max_size=6,
)
sessions = st.builds(
    Session,
    telefono=st.just(PHONE),
    estado=st.sampled_from(STATES) | st.text(max_size=10),
    datos=datos,
    equipo_id_temp=st.none() | st.integers(),
    contador_mensajes=st.integers(0, 10**6),
    version=st.integers(0, 10**6),
    ultima_actividad=st.none() | moments,
)
inbounds = st.builds(
    Inbound,
    message_id=st.text(max_size=40),
    telefono=st.just(PHONE),
    kind=st.sampled_from(sorted(KINDS)),
    text=st.none() | texts,
    reply_id=st.none() | st.sampled_from(sorted(INTENT_BY_REPLY_ID)) | st.text(max_size=8),
    timestamp=moments,
    ref_id=st.none() | st.sampled_from(["wamid.LAST", "wamid.OTHER"]),
)
facts = st.builds(
    Facts,
    now=moments,
    equipos=st.just(FACTS.equipos) | st.just({}),
    reportes=st.just(FACTS.reportes) | st.just({}),
    idle_minutes=st.integers(1, 10**7),
    last_message_id=st.none() | st.just("wamid.LAST"),
)


@settings(max_examples=1500, deadline=None)
@given(current=sessions, message=inbounds, understood=understandings, known=facts)
def test_step_properties(current, message, understood, known):
    transition = step(current, message, understood, known)
    edits_last = message.ref_id is not None and message.ref_id == known.last_message_id
    silent = kinds.behaviour(message.kind, edits_last) == kinds.SILENT
    assert transition.estado_nuevo in STATES and (len(transition.replies) >= 1) != silent
    assert transition.estado_anterior == current.estado
    if silent:  # not a request: whatever the understanding, the session is left as it was
        assert transition.estado_nuevo == (current.estado if current.estado in STATES else "INICIO")
        assert not transition.effects
    elif understood.intent == "CANCELAR":
        assert transition.estado_nuevo == "INICIO" and not transition.effects
    if transition.effects:
        assert current.estado in CONFIRM_STATES and understood.intent == "CONFIRMAR"
        assert message.kind in READABLE_KINDS and transition.estado_nuevo == "INICIO"
        assert all(TICKET.fullmatch(e.numero_ticket) for e in transition.effects)
    assert step(current, message, understood, known) == transition  # deterministic
    __import__("json").dumps(transition.datos)


@settings(max_examples=500, deadline=None)
@given(current=sessions, text=st.none() | texts, reply_id=st.none() | st.sampled_from(sorted(INTENT_BY_REPLY_ID)))
def test_rules_and_step_together_never_fail(current, text, reply_id):
    understood = understand(text, reply_id, current.estado)
    transition = step(current, inbound(text, "interactive" if reply_id else "text", reply_id), understood, FACTS)
    assert transition.replies and transition.estado_nuevo in STATES


# -- a report is never dropped silently; typed options; what each step expects ----------------


def switch_asked(transition):
    (reply,) = transition.replies
    return reply.kind == "buttons" and reply.options == r.SWITCH_OPTIONS


@pytest.mark.parametrize("estado, text, reply_id", [
    ("REFRI_ESPERA_SAP", "se descompuso la camioneta", None),       # typed at the SAP prompt
    ("VEHICULO_ESPERA_PLACA", "Refrigerador", "menu_refri"),         # a tap on an old menu
    ("VEHICULO_ESPERA_PROBLEMA", "Refrigerador", "menu_refri"),
    ("REFRI_CONFIRMAR", "Vehículo", "menu_vehiculo"),
])
def test_switching_reports_mid_report_asks_first_and_keeps_the_data(estado, text, reply_id):
    current = session(estado)
    asked = say(current, text, reply_id, kind="interactive" if reply_id else "text")
    assert switch_asked(asked) and asked.estado_nuevo == estado and not asked.effects
    assert {k: v for k, v in asked.datos.items() if k != "cambio"} == dict(current.datos)
    kept = say(after(current, asked), "No, seguir", "seguir_reporte", kind="interactive")
    assert kept.estado_nuevo == estado and kept.datos == current.datos and r.KEEP_GOING in body(kept)
    switched = say(after(current, asked), "sí")  # typed yes
    other = "VEHICULO" if estado.startswith("REFRI") else "REFRI"
    assert switched.estado_nuevo == FIRST[other] and "cambio" not in switched.datos


def test_the_switch_question_answered_by_number():
    current = session("REFRI_ESPERA_PROBLEMA")
    asked = say(current, "Vehículo", "menu_vehiculo", kind="interactive")
    assert say(after(current, asked), "1").estado_nuevo == "VEHICULO_ESPERA_EMPLEADO"
    assert say(after(current, asked), "2").estado_nuevo == "REFRI_ESPERA_PROBLEMA"
    ignored = say(after(current, asked), "no enfría")  # another answer: the question lapses
    assert "cambio" not in ignored.datos and ignored.estado_nuevo == "REFRI_CONFIRMAR"


@pytest.mark.parametrize("text, estado_nuevo", [
    ("1", "REFRI_ESPERA_SAP"), ("2", "VEHICULO_ESPERA_EMPLEADO"), ("2)", "VEHICULO_ESPERA_EMPLEADO"),
    ("vehiculo", "VEHICULO_ESPERA_EMPLEADO"), ("Consultar estado", "INICIO"), ("4", "INICIO"),
])
def test_a_typed_number_or_title_picks_from_the_menu(text, estado_nuevo):
    assert say(session("INICIO"), text).estado_nuevo == estado_nuevo


@pytest.mark.parametrize("estado", ["REFRI_CONFIRMAR", "VEHICULO_CONFIRMAR"])
def test_a_typed_number_picks_at_the_confirmation(estado):
    created = say(session(estado), "1")
    assert created.effects and created.estado_nuevo == "INICIO"
    cancelled = say(session(estado), "2")
    assert not cancelled.effects and r.CANCELLED in body(cancelled)


@pytest.mark.parametrize("estado, text", [
    ("REFRI_ESPERA_SAP", "123"), ("REFRI_ESPERA_SAP", "abc"), ("VEHICULO_ESPERA_EMPLEADO", "12"),
    ("VEHICULO_ESPERA_PLACA", "???"), ("REFRI_CONFIRMAR", "quizás"), ("INICIO", "asdf"),
])
def test_rejected_input_says_what_was_expected_and_keeps_the_step(estado, text):
    transition = say(session(estado), text)
    assert transition.estado_nuevo == estado and r.EXPECTED[estado] in body(transition)
    assert r.NOT_UNDERSTOOD not in body(transition)


def test_a_plate_keeps_its_full_text():
    transition = say(session("VEHICULO_ESPERA_PLACA"), "ABC-123-D")
    assert transition.datos["placa"] == "ABC-123-D"
    assert say(session("VEHICULO_ESPERA_PLACA"), "la placa es abc 123 d").datos["placa"] == "ABC123D"


def test_the_short_ticket_form_is_understood_and_the_answer_has_no_menu():
    short = REPORTE.numero_ticket[-8:]
    facts = replace(FACTS, reportes={short: REPORTE})
    transition = say(session(), f"estado {short.lower()}", facts=facts)
    (reply,) = transition.replies
    assert reply.kind == "text" and not reply.options and r.report_status(REPORTE) in reply.text
    assert needed_lookups(understand(f"estado {short}", None, "INICIO")).tickets == (short,)


def test_a_ticket_of_another_user_reads_as_unknown_unless_a_supervisor_asks():
    stranger = replace(FACTS, viewer=frozenset({"5215500000000"}))
    hidden = say(session(), f"estado {REPORTE.numero_ticket}", facts=stranger)
    assert body(hidden) == r.UNKNOWN_TICKET.format(ticket=REPORTE.numero_ticket)
    boss = say(session(), f"estado {REPORTE.numero_ticket}", facts=replace(stranger, supervisor=True))
    assert r.report_status(REPORTE) in body(boss)
