"""Values the conversation core reads and returns: frozen, I/O-free, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Session states (SesionesChat.Estado).
INICIO = "INICIO"
REFRI_ESPERA_SAP = "REFRI_ESPERA_SAP"
REFRI_ESPERA_PROBLEMA = "REFRI_ESPERA_PROBLEMA"
REFRI_CONFIRMAR = "REFRI_CONFIRMAR"
VEHICULO_ESPERA_EMPLEADO = "VEHICULO_ESPERA_EMPLEADO"
VEHICULO_ESPERA_PLACA = "VEHICULO_ESPERA_PLACA"
VEHICULO_ESPERA_PROBLEMA = "VEHICULO_ESPERA_PROBLEMA"
VEHICULO_CONFIRMAR = "VEHICULO_CONFIRMAR"
STATES = (
    INICIO,
    REFRI_ESPERA_SAP, REFRI_ESPERA_PROBLEMA, REFRI_CONFIRMAR,
    VEHICULO_ESPERA_EMPLEADO, VEHICULO_ESPERA_PLACA, VEHICULO_ESPERA_PROBLEMA, VEHICULO_CONFIRMAR,
)  # fmt: skip
PROBLEM_STATES = (REFRI_ESPERA_PROBLEMA, VEHICULO_ESPERA_PROBLEMA)
CONFIRM_STATES = (REFRI_CONFIRMAR, VEHICULO_CONFIRMAR)

# Every inbound kind (bot_core/webhook/payload.py decodes them; conversation/kinds.py
# decides what each gets).
KINDS = frozenset({
    "text", "interactive", "button", "image", "audio", "video", "document",
    "sticker", "location", "contacts", "reaction", "order", "nfm_reply",
    "call_permission_reply", "edit", "revoke", "system", "unsupported",
})  # fmt: skip
READABLE_KINDS = frozenset({"text", "interactive", "button", "edit"})

SALUDO, AYUDA, REPORTAR_FALLA = "SALUDO", "AYUDA", "REPORTAR_FALLA"
REPORTE_REFRIGERADOR, REPORTE_VEHICULO = "REPORTE_REFRIGERADOR", "REPORTE_VEHICULO"
CANCELAR, CONFIRMAR, NEGAR = "CANCELAR", "CONFIRMAR", "NEGAR"
CONSULTAR_ESTADO, OTRO = "CONSULTAR_ESTADO", "OTRO"
INTENTS = (
    SALUDO, AYUDA, REPORTAR_FALLA, REPORTE_REFRIGERADOR, REPORTE_VEHICULO,
    CANCELAR, CONFIRMAR, NEGAR, CONSULTAR_ESTADO, OTRO,
)  # fmt: skip
ENTITY_KEYS = ("codigo_sap", "numero_empleado", "placa", "problema", "ticket")
_INTENT_SET, _ENTITY_KEY_SET = frozenset(INTENTS), frozenset(ENTITY_KEYS)  # membership tests per value built
SOURCES = ("rules", "ai", "fallback")

REFRIGERADOR, VEHICULO = "REFRIGERADOR", "VEHICULO"
ORIGINS = ("BOT", "USUARIO", "SISTEMA")

# Ids of the options the bot offers; a tap comes back as Inbound.reply_id.
BTN_MENU_REFRI = "menu_refri"
BTN_MENU_VEHICULO = "menu_vehiculo"
BTN_MENU_ESTADO = "menu_estado"
BTN_CONFIRMAR = "confirmar"
BTN_CANCELAR = "cancelar"
BTN_CAMBIAR = "cambiar_reporte"
BTN_SEGUIR = "seguir_reporte"

BODY_MAX = 1024
BUTTONS_MAX, BUTTON_TITLE_MAX = 3, 20
ROWS_MAX, ROW_TITLE_MAX = 10, 24
OPTION_ID_MAX = 200


def _require(ok: bool, message: str, *args: object) -> None:
    """Raise ValueError(message % args) unless ``ok``: the message is only formatted on failure
    (these checks run for every value the core builds, several per message)."""
    if not ok:
        raise ValueError(message % args if args else message)


@dataclass(frozen=True)
class Session:
    """A user's SesionesChat row: the conversation state and what it has gathered."""

    telefono: str
    estado: str
    datos: Mapping[str, Any]
    equipo_id_temp: int | None
    contador_mensajes: int
    version: int
    ultima_actividad: datetime | None

    @classmethod
    def new(cls, telefono: str) -> Session:
        return cls(telefono, INICIO, {}, None, 0, 0, None)


@dataclass(frozen=True)
class Inbound:
    """One message as the conversation core sees it (kind, text, a tapped option's id)."""

    message_id: str
    telefono: str
    kind: str
    text: str | None
    reply_id: str | None
    timestamp: datetime
    ref_id: str | None = None  # the message an edit, revoke or reaction refers to

    def __post_init__(self) -> None:
        _require(self.kind in KINDS, "unknown inbound kind %r", self.kind)


@dataclass(frozen=True)
class Understanding:
    """What a message means: intent, entities, confidence, and who decided (rules, AI, fallback)."""

    intent: str
    entities: Mapping[str, str] = field(default_factory=dict)
    confidence: float = 1.0
    source: str = "rules"

    def __post_init__(self) -> None:
        _require(self.intent in _INTENT_SET, "unknown intent %r", self.intent)
        _require(self.source in SOURCES, "unknown source %r", self.source)
        if not self.entities.keys() <= _ENTITY_KEY_SET:
            raise ValueError(f"unknown entities {sorted(self.entities.keys() - _ENTITY_KEY_SET)}")
        _require(all(isinstance(v, str) for v in self.entities.values()), "entities must be str")
        _require(
            not math.isnan(self.confidence) and 0.0 <= self.confidence <= 1.0,
            "confidence must lie in [0, 1]",
        )


@dataclass(frozen=True)
class Equipo:
    """An Equipos row: the equipment a refrigerator report names by its CodigoSAP."""

    equipo_id: int
    codigo_sap: str
    tipo: str
    descripcion: str
    ubicacion: str | None
    activo: bool


@dataclass(frozen=True)
class ReportStatus:
    """A Reportes row as a status query shows it."""

    numero_ticket: str
    tipo_reporte: str
    estado: str
    fecha_creacion: datetime
    owners: frozenset[str] = frozenset()  # the identifiers of the user who reported it


@dataclass(frozen=True)
class Facts:
    """What the shell read from the database for this message, plus the clock."""

    now: datetime
    equipos: Mapping[str, Equipo] = field(default_factory=dict)
    reportes: Mapping[str, ReportStatus] = field(default_factory=dict)
    idle_minutes: int = 30
    viewer: frozenset[str] = frozenset()  # the identifiers of the user who wrote
    supervisor: bool = False  # the user may read every ticket (the `supervisors` setting)
    last_message_id: str | None = None  # the user's previous message (what an edit may change)

    def __post_init__(self) -> None:
        _require(self.idle_minutes >= 1, "idle_minutes must be at least 1")


@dataclass(frozen=True)
class Lookups:
    """The rows step() may look at: Equipos by CodigoSAP, Reportes by NumeroTicket."""

    codigos_sap: tuple[str, ...]
    tickets: tuple[str, ...]


@dataclass(frozen=True)
class Reply:
    """One reply to send: plain text, or text with buttons or a list (WhatsApp's limits checked)."""

    kind: str
    text: str
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _require(self.kind in ("text", "buttons", "list"), "unknown reply kind %r", self.kind)
        _require(0 < len(self.text) <= BODY_MAX, "body must be 1..%d characters", BODY_MAX)
        ids = [option_id for option_id, _ in self.options]
        _require(len(set(ids)) == len(ids), "option ids must be unique")
        _require(all(0 < len(i) <= OPTION_ID_MAX for i in ids), "bad option id length")
        most, title_max = {
            "text": (0, 0),
            "buttons": (BUTTONS_MAX, BUTTON_TITLE_MAX),
            "list": (ROWS_MAX, ROW_TITLE_MAX),
        }[self.kind]
        _require(len(self.options) <= most, "%s takes at most %d options", self.kind, most)
        _require(self.kind == "text" or self.options, "%s needs options", self.kind)
        _require(
            all(0 < len(title) <= title_max for _, title in self.options),
            "%s option titles must be 1..%d characters", self.kind, title_max,
        )


@dataclass(frozen=True)
class CreateReport:
    """The effect of a confirmed report: the Reportes row to insert."""

    numero_ticket: str
    tipo_reporte: str
    equipo_id: int | None
    numero_empleado: str | None
    descripcion: str

    def __post_init__(self) -> None:
        _require(self.tipo_reporte in (REFRIGERADOR, VEHICULO), "bad tipo_reporte")


@dataclass(frozen=True)
class Transition:
    """What step() decided: the new state, the replies, the effects, the history line."""

    estado_anterior: str
    estado_nuevo: str
    datos: Mapping[str, Any]
    equipo_id_temp: int | None
    replies: tuple[Reply, ...]
    effects: tuple[CreateReport, ...]
    descripcion: str
    origen_accion: str

    def __post_init__(self) -> None:
        _require(self.estado_nuevo in STATES, "unknown state %r", self.estado_nuevo)
        _require(len(self.replies) >= 1 or not self.effects, "a transition that creates a report replies")
        _require(self.origen_accion in ORIGINS, "bad origen_accion %r", self.origen_accion)
        _require("\n" not in self.descripcion, "descripcion is one line")
