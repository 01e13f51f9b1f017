"""Offline Spanish understanding: keywords and regular expressions, no I/O.

Matching runs on a *folded* copy of the text (compatibility-decomposed, accents
dropped, lower case) that keeps, for every folded character, the index of the
original character it came from; spans found in the folded copy are cut out of
the original, so whatever is left of the user's text reaches `problema` literally.

User text is hostile (docs/security.md): every pattern here runs in linear time.
No two quantifiers next to each other can match the same characters: each run
of whitespace is read by one possessive quantifier (``*+``, never given back),
optional words are grouped with the whitespace before them, every other
quantifier is bounded, and the rules read at most :data:`MAX_TEXT_CHARS`
characters (WhatsApp's own limit for a text body).
tests/unit/test_rules_hostile.py feeds every entry point adversarial runs.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping

from .model import (
    AYUDA, BTN_CAMBIAR, BTN_CANCELAR, BTN_CONFIRMAR, BTN_SEGUIR, BTN_MENU_ESTADO, BTN_MENU_REFRI, BTN_MENU_VEHICULO,
    CANCELAR, CONFIRMAR, CONSULTAR_ESTADO, INICIO, NEGAR, OTRO, PROBLEM_STATES, REFRI_ESPERA_PROBLEMA,
    REPORTAR_FALLA, REPORTE_REFRIGERADOR, REPORTE_VEHICULO, SALUDO, STATES, VEHICULO_ESPERA_EMPLEADO,
    Understanding,
)  # fmt: skip

INTENT_BY_REPLY_ID = {
    BTN_MENU_REFRI: REPORTE_REFRIGERADOR,
    BTN_MENU_VEHICULO: REPORTE_VEHICULO,
    BTN_MENU_ESTADO: CONSULTAR_ESTADO,
    BTN_CONFIRMAR: CONFIRMAR,
    BTN_CANCELAR: CANCELAR,
    BTN_CAMBIAR: CONFIRMAR,  # "switch to the other report?" -> yes
    BTN_SEGUIR: NEGAR,  # ... -> no, go on with this one
}

GREETING = {"hola", "holi", "buenas", "buenos", "buen", "saludos", "hey", "hi", "hello"}
HELP = {"ayuda", "ayudame", "help", "menu", "opciones", "instrucciones"}
CANCEL = {"cancelar", "cancela", "cancelo", "cancelalo", "salir", "terminar", "detener",
          "stop", "basta", "olvidalo", "anular"}  # fmt: skip
YES = {"si", "sip", "confirmo", "confirmar", "confirma", "confirmado", "ok", "okay", "okey",
       "va", "dale", "correcto", "claro", "afirmativo", "acepto", "exacto", "acuerdo", "yes"}  # fmt: skip
NO = {"no", "nel", "nop", "nope", "negativo", "incorrecto"}
STATUS = {"estado", "estatus", "status", "consultar", "consulta", "seguimiento", "ticket", "folio"}
REPORT = {"reportar", "reporte", "reporto", "falla", "fallas", "averia", "descompuesto",
          "descompuesta", "problema", "danado", "danada"}  # fmt: skip
REFRI_WORD = re.compile(r"(refri|nevera|enfriador|congelador|frigorific|heladera)\w*")
VEHICLE_WORD = re.compile(
    r"(vehiculos?|camion(es)?|camionetas?|carros?|motos?|motocicletas?|unidad(es)?"
    r"|autos?|automovil(es)?|coches?|trocas?)"
)
# Words that carry no description of a fault (besides the keywords above).
FILLER = {
    "por", "favor", "porfa", "gracias", "quiero", "quisiera", "deseo", "necesito", "el", "la",
    "lo", "los", "las", "mi", "mis", "su", "reporte", "un", "una", "de", "del", "ya", "mejor",
    "todo", "es", "esta", "bien", "muchas", "que", "tal", "dia", "dias", "tardes", "noches",
    "please", "pls", "con", "en", "para", "tengo", "hay", "hacer", "levantar", "sap", "codigo",
    "equipo", "numero", "placa", "empleado", "nomina", "y", "a",
}  # fmt: skip
COMMAND_MAX_WORDS = 6

_A, _D = "(?<![0-9a-z])", "(?![0-9a-z])"  # alphanumeric boundaries in folded text
MAX_TEXT_CHARS = 4096  # a WhatsApp text body is at most 4,096 characters
TICKET = re.compile(_A + r"((?:ref|veh)-[0-9]{8}-[0-9a-f]{8})" + _D)
# The short form: a status word and the ticket's last 8 hex digits ("estado 1C1DB4BA").
SHORT_TICKET = re.compile(_A + r"(?:estado|estatus|status|ticket|folio)[ :#]{0,3}([0-9a-f]{8})" + _D)
EMPLOYEE = re.compile(
    _A + r"(?:(?:numero|num|no)\.?\s*+(?:de\s++)?)?(?:empleado|nomina)\s*+(?:(?:#|:|no\.?|num\.?)\s*+)?"
    r"([0-9]{4,8})" + _D
)
EMPLOYEE_HASH = re.compile(r"#\s*+([0-9]{4,8})" + _D)
_PLATE = (r"[a-z]{3}S[0-9]{3}S[a-z]|[a-z]{3}S[0-9]{3,4}|[a-z]{3}S[0-9]{2}S[0-9]{2}|[0-9]{2}S[a-z]{3}S[0-9]{1,2}"
          r"|[0-9]{3}S[a-z]{3}|[a-z]S[0-9]{2,3}S[a-z]{2,3}")  # fmt: skip
PLATE_AFTER_WORD = re.compile(
    _A + r"placas?\s*+(?:(?:[:#]|es\b|del vehiculo\b)\s*+)?(" + _PLATE.replace("S", "[- ]?") + ")" + _D
)
PLATE = re.compile(_A + "(" + _PLATE.replace("S", "-?") + ")" + _D)
SAP_AFTER_WORD = re.compile(
    _A + r"(?:codigo(?:\s*+sap)?|sap|equipo)\s*+(?:[:#]\s*+)?([0-9]{7,10})" + _D
)
SAP = re.compile(_A + r"([0-9]{7,10})" + _D)
BARE_EMPLOYEE = re.compile(_A + r"([0-9]{4,8})" + _D)

VALID = {
    "codigo_sap": re.compile(r"[0-9]{7,10}"),
    "numero_empleado": re.compile(r"[0-9]{4,8}"),
    "placa": re.compile(r"(?=[A-Z0-9-]*[0-9])(?=[A-Z0-9-]*[A-Z])[A-Z0-9](?:-?[A-Z0-9]){3,9}"),
    "ticket": re.compile(r"(?:(?:REF|VEH)-[0-9]{8}-)?[0-9A-F]{8}"),  # full, or its short form
}


def fold(text: str) -> tuple[str, tuple[int, ...]]:
    """Text without accents, in lower case, and each folded char's index in `text`."""
    if text.isascii():  # the common case, without a normalisation per character
        return text.lower(), tuple(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            chars.append(char.lower())
            origin.append(index)
            continue
        for folded in _fold_char(char):
            chars.append(folded)
            origin.append(index)
    return "".join(chars), tuple(origin)


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def normalise_plate(value: str) -> str:
    return "".join(value.split()).upper()


def is_description(text: str) -> bool:
    """Enough letters to describe a fault (rejects '', 'no', '👍', '12345')."""
    return sum(char.isalpha() for char in text) >= 3


def clean_entities(entities: Mapping[str, object]) -> dict[str, str]:
    """Entities reduced to well-formed values (whatever their source): others dropped."""
    clean: dict[str, str] = {}
    for key, value in entities.items():
        if not isinstance(value, str) or (key in VALID and len(value) > 64):
            continue  # no well-formed code, plate or ticket is that long
        value = value.strip()
        if key == "placa":
            value = normalise_plate(value)
        elif key == "ticket":
            value = value.upper()
        pattern = VALID.get(key)
        if (pattern.fullmatch(value) if pattern else key == "problema" and value):
            clean[key] = value
    return clean


def understand(text: str | None, reply_id: str | None, estado: str) -> Understanding:
    if reply_id in INTENT_BY_REPLY_ID:
        return Understanding(INTENT_BY_REPLY_ID[reply_id], {}, 1.0, "rules")
    if not isinstance(text, str) or not text.strip():
        return Understanding(OTRO, {}, 0.0, "rules")
    return _understand(text, *_read(text), rules_state(estado))


def rules_state(estado: str) -> str:
    """The one state of ``estado``'s class: the rules cannot tell the states of a class apart."""
    if estado in PROBLEM_STATES or estado == VEHICULO_ESPERA_EMPLEADO:
        return estado
    return next((prefix for prefix in ("REFRI", "VEHICULO") if estado.startswith(prefix)), "")


def understand_in_every_state(text: str | None, reply_id: str | None) -> dict[str, Understanding]:
    """``understand`` for every session state, the text read once: the processor runs this
    before its transaction (and, for a long text, off the event loop) and picks the
    understanding of the state it reads inside the transaction."""
    if reply_id in INTENT_BY_REPLY_ID or not isinstance(text, str) or not text.strip():
        single = understand(text, reply_id, INICIO)
        return {estado: single for estado in STATES}
    reading = folded, _, words = _read(text)
    refri_at, vehicle_at = _first(REFRI_WORD, words), _first(VEHICLE_WORD, words)
    command = _command(folded, words, INICIO) is not None  # the same in every state but the problem ones
    by_reading: dict[tuple[str | None, bool], Understanding] = {}
    every: dict[str, Understanding] = {}
    for estado in STATES:
        key = _what_the_rules_read_of(estado, refri_at, vehicle_at, command)
        if key not in by_reading:
            by_reading[key] = _understand(text, *reading, rules_state(estado))
        every[estado] = by_reading[key]
    return every


def _what_the_rules_read_of(estado: str, refri_at: int, vehicle_at: int, command: bool) -> tuple[str | None, bool]:
    """All of ``estado`` that the rules' answer depends on, for a text whose first refrigerator
    and vehicle keywords are at ``refri_at`` and ``vehicle_at`` and which is (``command``) or
    is not a command outside the problem states: a *_ESPERA_PROBLEMA state itself (the whole
    text is its description); a command, the same in every other state; otherwise the report
    the text is about and whether an employee number is awaited (a text naming a refrigerator
    reads the same in INICIO as in VEHICULO_ESPERA_PLACA, so it is understood once for both;
    VEHICULO_ESPERA_EMPLEADO also reads a bare number as the employee's, so it has its own)."""
    if estado in PROBLEM_STATES:
        return estado, False
    if command:
        return "command", False
    return _context(refri_at, vehicle_at, estado), estado == VEHICULO_ESPERA_EMPLEADO


def _read(text: str) -> tuple[str, tuple[int, ...], list[str]]:
    """What the patterns read: the folded first MAX_TEXT_CHARS characters (a description
    keeps the whole text, but no pattern looks past them)."""
    folded, origin = fold(text[:MAX_TEXT_CHARS])
    return folded, origin, re.findall(r"[^\W_]+", folded)


def _understand(text: str, folded: str, origin: tuple[int, ...], words: list[str], estado: str) -> Understanding:
    command = _command(folded, words, estado)
    if command:
        return Understanding(command, _ticket(folded), 0.9, "rules")
    if estado in PROBLEM_STATES:
        return _description(text, estado)
    return _free_text(text, folded, origin, words, estado)


def _command(folded: str, words: list[str], estado: str) -> str | None:
    """An intent the whole (short) message is about, or None."""
    meaningful = [w for w in words if w not in FILLER]
    short = len(words) <= COMMAND_MAX_WORDS

    def only(vocabulary: set[str]) -> bool:
        return (
            short
            and any(w in vocabulary for w in meaningful)
            and all(w in vocabulary or w in GREETING for w in meaningful)
        )

    first = words[0] if words else ""
    if only(CANCEL) or (first in CANCEL and estado not in PROBLEM_STATES):
        return CANCELAR
    ticket = (TICKET.search(folded) or SHORT_TICKET.search(folded)) and (short or estado not in PROBLEM_STATES)
    if ticket or (first in STATUS and len(words) <= 4):
        return CONSULTAR_ESTADO
    for vocabulary, intent in ((YES, CONFIRMAR), (NO, NEGAR), (HELP, AYUDA), (GREETING, SALUDO)):
        if only(vocabulary):
            return intent
    return None


def _ticket(folded: str) -> dict[str, str]:
    match = TICKET.search(folded) or SHORT_TICKET.search(folded)
    return {"ticket": match.group(1).upper()} if match else {}


def _description(text: str, estado: str) -> Understanding:
    """In a *_ESPERA_PROBLEMA state the whole message is the description."""
    if not is_description(text):
        return Understanding(OTRO, {}, 0.2, "rules")
    flow = REPORTE_REFRIGERADOR if estado == REFRI_ESPERA_PROBLEMA else REPORTE_VEHICULO
    return Understanding(flow, {"problema": text.strip()}, 0.8, "rules")


def _free_text(text: str, folded: str, origin: tuple[int, ...], words: list[str], estado: str):
    refri_at = _first(REFRI_WORD, words)
    vehicle_at = _first(VEHICLE_WORD, words)
    context = _context(refri_at, vehicle_at, estado)
    entities, spans = _extract(folded, estado, context)
    read = min(len(text), MAX_TEXT_CHARS)  # the folded copy covers text[:read]
    problema = _remainder(text, [_original_span(span, origin, read) for span in spans])
    if problema and _substantive(problema):
        entities["problema"] = problema
    intent = _intent(entities, words, refri_at, vehicle_at)
    confidence = 0.9 if set(entities) - {"problema"} else 0.7 if intent != OTRO else 0.1
    return Understanding(intent, entities, confidence, "rules")


def _context(refri_at: int, vehicle_at: int, estado: str) -> str | None:
    """Which report the message is about: the first keyword named, else the current flow."""
    if refri_at != vehicle_at:
        return "REFRI" if refri_at < vehicle_at else "VEHICULO"
    return next((c for c in ("REFRI", "VEHICULO") if estado.startswith(c)), None)


def _first(pattern: re.Pattern[str], words: list[str]) -> int:
    return next((i for i, w in enumerate(words) if pattern.fullmatch(w)), len(words) + 1)


def _extract(folded: str, estado: str, context: str | None):
    """Entities and their spans in `folded`, most specific pattern first; the
    context keeps a refrigerator's code from reading as a plate, and so on."""
    rules: list[tuple[str, re.Pattern[str]]] = [("codigo_sap", SAP_AFTER_WORD)]
    if context != "REFRI":
        rules += [("numero_empleado", EMPLOYEE), ("numero_empleado", EMPLOYEE_HASH),
                  ("placa", PLATE_AFTER_WORD), ("placa", PLATE)]  # fmt: skip
    if estado == VEHICULO_ESPERA_EMPLEADO:
        rules.append(("numero_empleado", BARE_EMPLOYEE))
    elif context != "VEHICULO":
        rules.append(("codigo_sap", SAP))
    entities: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    for key, pattern in rules:
        match = None if key in entities else pattern.search(folded)
        value = clean_entities({key: match.group(1)}).get(key) if match else None
        if value is None:
            continue
        entities[key] = value
        spans.append(match.span())
        start, end = match.span()
        folded = folded[:start] + " " * (end - start) + folded[end:]  # masked, same length
    return entities, spans


def _original_span(span: tuple[int, int], origin: tuple[int, ...], size: int) -> tuple[int, int]:
    start, end = span
    return origin[start], origin[end] if end < len(origin) else size


def _remainder(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` without the spans; untouched (but stripped) when there are none."""
    spans = sorted(spans)
    if not spans:
        return text.strip()
    pieces, position = [], 0
    for start, end in spans:
        pieces.append(text[position:start])
        position = max(position, end)
    pieces.append(text[position:])
    return " ".join(p.strip() for p in pieces if p.strip()).strip(" \t\r\n,;:.-")


def _substantive(text: str) -> bool:
    """Holds a word that is neither filler nor a keyword: it says something about the fault."""
    vocabulary = FILLER | GREETING | HELP | REPORT | STATUS | YES | CANCEL
    return any(
        len(w) >= 3 and w.isalpha() and w not in vocabulary
        and not REFRI_WORD.fullmatch(w) and not VEHICLE_WORD.fullmatch(w)
        for w in re.findall(r"[^\W_]+", fold(text[:MAX_TEXT_CHARS])[0])
    )  # fmt: skip


def _intent(entities: Mapping[str, str], words: list[str], refri_at: int, vehicle_at: int) -> str:
    """Entities decide the kind of report; without (or with both kinds of) them, keyword order."""
    refri_entity = "codigo_sap" in entities
    vehicle_entity = "placa" in entities or "numero_empleado" in entities
    if refri_entity != vehicle_entity:
        return REPORTE_REFRIGERADOR if refri_entity else REPORTE_VEHICULO
    if refri_at != vehicle_at:
        return REPORTE_REFRIGERADOR if refri_at < vehicle_at else REPORTE_VEHICULO
    present = set(words)
    for vocabulary, intent in ((REPORT, REPORTAR_FALLA), (HELP, AYUDA), (GREETING, SALUDO)):
        if present & vocabulary:
            return intent
    return OTRO
