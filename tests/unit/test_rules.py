"""The offline understanding: keywords, entities, and literal preservation of the user's text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot_core.conversation.model import (
    ENTITY_KEYS, INTENTS, PROBLEM_STATES, STATES, REFRI_ESPERA_PROBLEMA, VEHICULO_ESPERA_PROBLEMA,
)  # fmt: skip
from bot_core.conversation.rules import (
    INTENT_BY_REPLY_ID, clean_entities, fold, is_description, normalise_plate, understand,
)  # fmt: skip

SQL = "'; DROP TABLE Reportes;--"


@pytest.mark.parametrize(
    "text, estado, intent",
    [
        ("hola", "INICIO", "SALUDO"),
        ("Buenas tardes!!", "INICIO", "SALUDO"),
        ("HOLA 👋🏽", "INICIO", "SALUDO"),
        ("ayuda", "INICIO", "AYUDA"),
        ("Menú", "INICIO", "AYUDA"),
        ("quiero reportar una falla", "INICIO", "REPORTAR_FALLA"),
        ("refri", "INICIO", "REPORTE_REFRIGERADOR"),
        ("Mi REFRIGERADOR", "INICIO", "REPORTE_REFRIGERADOR"),
        ("la nevera", "INICIO", "REPORTE_REFRIGERADOR"),
        ("enfriador", "INICIO", "REPORTE_REFRIGERADOR"),
        ("congelador", "INICIO", "REPORTE_REFRIGERADOR"),
        ("VEHÍCULO", "INICIO", "REPORTE_VEHICULO"),
        ("vehiculo", "INICIO", "REPORTE_VEHICULO"),
        ("el camion", "INICIO", "REPORTE_VEHICULO"),
        ("Camión", "INICIO", "REPORTE_VEHICULO"),
        ("mi carro", "INICIO", "REPORTE_VEHICULO"),
        ("la moto", "INICIO", "REPORTE_VEHICULO"),
        ("la unidad", "INICIO", "REPORTE_VEHICULO"),
        ("cancelar", "REFRI_ESPERA_SAP", "CANCELAR"),
        ("Quiero CANCELAR el reporte", "VEHICULO_ESPERA_PLACA", "CANCELAR"),
        ("salir", "REFRI_CONFIRMAR", "CANCELAR"),
        ("cancela, me equivoqué de equipo", "REFRI_ESPERA_SAP", "CANCELAR"),
        ("sí", "REFRI_CONFIRMAR", "CONFIRMAR"),
        ("SI", "REFRI_CONFIRMAR", "CONFIRMAR"),
        ("Sí, por favor", "VEHICULO_CONFIRMAR", "CONFIRMAR"),
        ("confirmo", "VEHICULO_CONFIRMAR", "CONFIRMAR"),
        ("ok 👍", "VEHICULO_CONFIRMAR", "CONFIRMAR"),
        ("no", "REFRI_CONFIRMAR", "NEGAR"),
        ("No, gracias", "REFRI_CONFIRMAR", "NEGAR"),
        ("estado", "INICIO", "CONSULTAR_ESTADO"),
        ("consultar", "INICIO", "CONSULTAR_ESTADO"),
        ("asdf qwer", "INICIO", "OTRO"),
        ("🙂", "INICIO", "OTRO"),
        ("", "INICIO", "OTRO"),
        ("no enfría", "REFRI_ESPERA_PROBLEMA", "REPORTE_REFRIGERADOR"),
        ("no arranca", "VEHICULO_ESPERA_PROBLEMA", "REPORTE_VEHICULO"),
        ("el refri del camión no enfría", "VEHICULO_ESPERA_PROBLEMA", "REPORTE_VEHICULO"),
        ("cancelar", "REFRI_ESPERA_PROBLEMA", "CANCELAR"),
        ("salir del patio no puedo, no arranca", "VEHICULO_ESPERA_PROBLEMA", "REPORTE_VEHICULO"),
    ],
)
def test_intent_keywords(text, estado, intent):
    assert understand(text, None, estado).intent == intent


@pytest.mark.parametrize(
    "text, estado, expected",
    [
        ("4001234", "REFRI_ESPERA_SAP", {"codigo_sap": "4001234"}),
        ("el código SAP es 1234567890", "REFRI_ESPERA_SAP", {"codigo_sap": "1234567890"}),
        ("sap: 4001234", "VEHICULO_ESPERA_PLACA", {"codigo_sap": "4001234"}),
        ("123456", "REFRI_ESPERA_SAP", {}),
        ("12345678901", "REFRI_ESPERA_SAP", {}),
        ("12345", "VEHICULO_ESPERA_EMPLEADO", {"numero_empleado": "12345"}),
        ("empleado 98765", "INICIO", {"numero_empleado": "98765"}),
        ("Nómina: 4321", "INICIO", {"numero_empleado": "4321"}),
        ("número de empleado #556677", "INICIO", {"numero_empleado": "556677"}),
        ("#12345678", "VEHICULO_ESPERA_PLACA", {"numero_empleado": "12345678"}),
        ("123", "VEHICULO_ESPERA_EMPLEADO", {}),
        ("ABC-123", "VEHICULO_ESPERA_PLACA", {"placa": "ABC-123"}),
        ("abc1234", "VEHICULO_ESPERA_PLACA", {"placa": "ABC1234"}),
        ("12-abc-3", "VEHICULO_ESPERA_PLACA", {"placa": "12-ABC-3"}),
        ("la placa es jkl 12 34", "VEHICULO_ESPERA_PLACA", {"placa": "JKL1234"}),
        ("del 2020", "INICIO", {}),
        ("estado REF-20261128-1a2b3c4d", "INICIO", {"ticket": "REF-20261128-1A2B3C4D"}),
        ("VEH-20261128-ABCDEF01", "VEHICULO_ESPERA_PLACA", {"ticket": "VEH-20261128-ABCDEF01"}),
    ],
)
def test_entities(text, estado, expected):
    entities = dict(understand(text, None, estado).entities)
    entities.pop("problema", None)
    assert entities == expected


def test_refrigerator_context_keeps_codes_away_from_plates_and_vice_versa():
    assert understand("ABC1234", None, "REFRI_ESPERA_SAP").entities.get("placa") is None
    assert understand("el camión 4001234", None, "INICIO").entities.get("codigo_sap") is None
    assert understand("4001234", None, "VEHICULO_ESPERA_PLACA").entities.get("codigo_sap") is None


@pytest.mark.parametrize(
    "text, intent, entities",
    [
        (
            "mi refri 4001234 no enfría",
            "REPORTE_REFRIGERADOR",
            {"codigo_sap": "4001234", "problema": "mi refri no enfría"},
        ),
        (
            "el camión ABC-123 no arranca, empleado 12345",
            "REPORTE_VEHICULO",
            {"placa": "ABC-123", "numero_empleado": "12345", "problema": "el camión no arranca"},
        ),
        (
            "Hola, el REFRIGERADOR 4001234 está goteando 💧",
            "REPORTE_REFRIGERADOR",
            {"codigo_sap": "4001234", "problema": "Hola, el REFRIGERADOR está goteando 💧"},
        ),
        ("mi refri 4001234", "REPORTE_REFRIGERADOR", {"codigo_sap": "4001234"}),
        ("reportar camión placa ABC-123", "REPORTE_VEHICULO", {"placa": "ABC-123"}),
    ],
)
def test_all_in_one_messages(text, intent, entities):
    understood = understand(text, None, "INICIO")
    assert (understood.intent, dict(understood.entities)) == (intent, entities)


def test_accents_and_case_fold_but_problema_keeps_the_original_characters():
    decomposed = "vehi\u0301culo ABC-123 FRENOS débiles"
    understood = understand(decomposed, None, "INICIO")
    assert understood.intent == "REPORTE_VEHICULO"
    assert understood.entities["problema"] == "vehi\u0301culo FRENOS débiles"


@pytest.mark.parametrize("estado", PROBLEM_STATES)
@pytest.mark.parametrize(
    "text",
    [SQL, "Robert'); DROP TABLE Students;-- 🚚🔥", "se apagó\x00\x07 de repente\ttras el golpe", "مكيف لا يعمل"],
)
def test_problem_state_text_round_trips_literally(estado, text):
    assert understand(text, None, estado).entities["problema"] == text


@pytest.mark.parametrize("text", [SQL, "la nevera hace  ruido\tfuerte", "¡¡SE   QUEMÓ!!"])
def test_text_outside_a_flow_is_kept_literally(text):
    assert understand(text, None, "INICIO").entities["problema"] == text


@pytest.mark.parametrize("reply_id, intent", sorted(INTENT_BY_REPLY_ID.items()))
def test_button_ids_map_to_intents_whatever_the_title(reply_id, intent):
    understood = understand("texto cualquiera", reply_id, "REFRI_ESPERA_PROBLEMA")
    assert (understood.intent, understood.confidence) == (intent, 1.0)


def test_unknown_button_id_falls_back_to_its_title():
    assert understand("Cancelar", "old_button", "REFRI_ESPERA_SAP").intent == "CANCELAR"


@pytest.mark.parametrize(
    "raw, clean",
    [
        ({"codigo_sap": " 4001234 "}, {"codigo_sap": "4001234"}),
        ({"codigo_sap": "40O1234"}, {}),
        ({"numero_empleado": "12"}, {}),
        ({"placa": "abc 123"}, {"placa": "ABC123"}),
        ({"placa": "ABCDEF"}, {}),
        ({"ticket": "ref-20261128-1a2b3c4d"}, {"ticket": "REF-20261128-1A2B3C4D"}),
        ({"problema": "   "}, {}),
        ({"problema": 5}, {}),
    ],
)
def test_clean_entities(raw, clean):
    assert clean_entities(raw) == clean


def test_helpers():
    assert normalise_plate(" abc - 123 ") == "ABC-123"
    assert fold("ÁRBOL ñ")[0] == "arbol n"
    assert fold("e\u0301x") == ("ex", (0, 2))
    assert not is_description("no") and not is_description("👍👍👍") and is_description("gotea")


@settings(max_examples=300, deadline=None)
@given(
    text=st.none() | st.text() | st.text(alphabet=st.characters(codec="utf-8")),
    reply_id=st.none() | st.sampled_from(sorted(INTENT_BY_REPLY_ID)) | st.text(max_size=10),
    estado=st.sampled_from(STATES) | st.text(max_size=12),
)
def test_understand_tolerates_any_input(text, reply_id, estado):
    understood = understand(text, reply_id, estado)
    assert understood.intent in INTENTS and understood.source == "rules"
    assert set(understood.entities) <= set(ENTITY_KEYS)
    assert clean_entities(understood.entities) == {
        k: v for k, v in understood.entities.items() if k != "problema"
    } | ({"problema": understood.entities["problema"].strip()} if "problema" in understood.entities else {})


@settings(max_examples=300, deadline=None)
@given(text=st.text(min_size=1), estado=st.sampled_from([REFRI_ESPERA_PROBLEMA, VEHICULO_ESPERA_PROBLEMA]))
def test_a_description_in_a_problem_state_is_the_whole_text(text, estado):
    understood = understand(text, None, estado)
    if understood.intent in ("REPORTE_REFRIGERADOR", "REPORTE_VEHICULO"):
        assert understood.entities == {"problema": text.strip()}


def test_lone_surrogates_and_control_characters_do_not_break_it():
    for text in ("\ud800 refri 4001234 \udfff no enfría", "\x00\x1b[31m", "\u202e4321 oleuqnac"):
        understand(text, None, "INICIO")
