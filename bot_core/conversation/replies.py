"""Every Spanish text the bot sends and every audit line it writes: the one place to edit them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import (
    BODY_MAX, BTN_CAMBIAR, BTN_CANCELAR, BTN_CONFIRMAR, BTN_SEGUIR, BTN_MENU_ESTADO, BTN_MENU_REFRI, BTN_MENU_VEHICULO,
    AYUDA, CONFIRMAR, INICIO, NEGAR, REFRI_CONFIRMAR, REFRI_ESPERA_PROBLEMA, REFRI_ESPERA_SAP,
    REFRIGERADOR, REPORTAR_FALLA, REPORTE_REFRIGERADOR, REPORTE_VEHICULO, SALUDO, VEHICULO,
    VEHICULO_CONFIRMAR, VEHICULO_ESPERA_EMPLEADO, VEHICULO_ESPERA_PLACA, VEHICULO_ESPERA_PROBLEMA,
    ReportStatus, Reply,
)  # fmt: skip

MENU_OPTIONS = (
    (BTN_MENU_REFRI, "Refrigerador"),
    (BTN_MENU_VEHICULO, "Vehículo"),
    (BTN_MENU_ESTADO, "Consultar estado"),
)
CONFIRM_OPTIONS = ((BTN_CONFIRMAR, "Confirmar"), (BTN_CANCELAR, "Cancelar"))
SWITCH_OPTIONS = ((BTN_CAMBIAR, "Sí, cambiar"), (BTN_SEGUIR, "No, seguir"))
SWITCH_QUESTION = (
    "Tienes un reporte de *{actual}* sin terminar. ¿Quieres dejarlo y empezar uno de *{nuevo}*? "
    "Lo que llevas del reporte actual se descartará."
)
KEEP_GOING = "Perfecto, seguimos con tu reporte."
PROBLEMA_IN_SUMMARY_MAX = 500
LABEL_MAX = 200

PROMPTS = {
    INICIO: "¿Qué deseas hacer? Elige una opción:",
    REFRI_ESPERA_SAP: (
        "Envíame el *código SAP* del refrigerador (de 7 a 10 dígitos, "
        "viene en la etiqueta del equipo)."
    ),
    REFRI_ESPERA_PROBLEMA: (
        "Describe brevemente la falla del refrigerador (por ejemplo: no enfría, hace ruido, gotea)."
    ),
    VEHICULO_ESPERA_EMPLEADO: "Envíame tu *número de empleado* (de 4 a 8 dígitos).",
    VEHICULO_ESPERA_PLACA: "¿Cuál es la *placa* del vehículo? (por ejemplo: ABC-123 o ABC-123-D)",
    VEHICULO_ESPERA_PROBLEMA: (
        "Describe brevemente la falla del vehículo (por ejemplo: no arranca, ponchadura, frenos)."
    ),
    REFRI_CONFIRMAR: "Revisa tu reporte de *refrigerador*:",
    VEHICULO_CONFIRMAR: "Revisa tu reporte de *vehículo*:",
}
CONFIRM_QUESTION = "¿Lo envío?"
CANCEL_HINT = "Escribe *cancelar* si quieres salir."

WELCOME = "¡Hola! 👋 Soy el asistente de reportes de fallas."
HELP = (
    "Puedo registrar fallas de *refrigeradores* (con su código SAP) y de *vehículos* "
    "(con tu número de empleado y la placa), y decirte el estado de un reporte: "
    "escribe *estado* y el número de ticket."
)
HELP_IN_FLOW = "Estoy tomando los datos de tu reporte. " + CANCEL_HINT
STILL_HERE = "¡Hola! Seguimos con tu reporte."
WHAT_TO_REPORT = "Claro, te ayudo con el reporte."
NOT_UNDERSTOOD = "Perdón, no entendí tu mensaje."
# What a step expected, said when a message brought nothing usable for it (the step is kept).
EXPECTED = {
    INICIO: "Perdón, no entendí. Toca una opción o escribe su número (1, 2 o 3).",
    REFRI_ESPERA_SAP: "Eso no parece un código SAP: son de 7 a 10 dígitos, solo números (por ejemplo: 4001234).",
    REFRI_ESPERA_PROBLEMA: "Necesito que me cuentes la falla con palabras (por ejemplo: no enfría).",
    VEHICULO_ESPERA_EMPLEADO: "Eso no parece un número de empleado: son de 4 a 8 dígitos, solo números.",
    VEHICULO_ESPERA_PLACA: "Eso no parece una placa: letras y números, por ejemplo ABC-123 o ABC-123-D.",
    VEHICULO_ESPERA_PROBLEMA: "Necesito que me cuentes la falla con palabras (por ejemplo: no arranca).",
    REFRI_CONFIRMAR: "Responde *Confirmar* (o 1) para enviarlo, o *Cancelar* (o 2).",
    VEHICULO_CONFIRMAR: "Responde *Confirmar* (o 1) para enviarlo, o *Cancelar* (o 2).",
}
NOTHING_TO_CONFIRM = "No tienes ningún reporte pendiente de confirmar."
MISSING_DATA = "Todavía me faltan datos para el reporte."
OK_NOTHING = "De acuerdo."
START = {
    REFRIGERADOR: "Vamos a reportar una falla de *refrigerador*.",
    VEHICULO: "Vamos a reportar una falla de *vehículo*.",
}
# The note before the prompt when a message moved nothing forward, by intent (else NOT_UNDERSTOOD).
MENU_NOTES = {
    SALUDO: WELCOME,
    AYUDA: HELP,
    REPORTAR_FALLA: WHAT_TO_REPORT,
    CONFIRMAR: NOTHING_TO_CONFIRM,
    NEGAR: OK_NOTHING,
}
FLOW_NOTES = {
    SALUDO: STILL_HERE,
    AYUDA: HELP_IN_FLOW,
    CONFIRMAR: MISSING_DATA,
    REPORTE_REFRIGERADOR: "",
    REPORTE_VEHICULO: "",
}
UNSUPPORTED = (
    "Ese tipo de mensaje no lo puedo leer. Escríbeme con *texto* o usa los *botones* de este chat."
)
# Replies to messages the bot cannot read, by kind (conversation/kinds.py decides which gets which).
MEDIA_NOTE = (
    "Recibí tu archivo, pero no puedo revisar imágenes, videos ni documentos. "
    "Escríbeme con *texto* lo que necesitas."
)
AUDIO_NOTE = "No puedo escuchar audios. ¿Me lo escribes con *texto*, por favor?"
STICKER_NOTE = "😊 Para ayudarte necesito que me escribas con *texto*."
LOCATION_NOTE = (
    "Gracias por la ubicación, pero no la necesito para el reporte: "
    "escríbeme con *texto* los datos que te pido."
)
CONTACTS_NOTE = "Recibí un contacto, pero solo puedo registrar reportes con los datos que me escribas."
ORDER_NOTE = "Este chat no recibe pedidos; solo registra reportes de fallas."
FLOW_NOTE = "No pude leer ese formulario. Escríbeme con *texto* los datos que te pido."
CALL_PERMISSION_NOTE = "Gracias por tu respuesta. Por este chat solo registro reportes de fallas."
EXPIRED = (
    "Tu conversación anterior expiró por inactividad y los datos que no confirmaste "
    "se descartaron. Empecemos de nuevo."
)
CANCELLED = "Listo, cancelé el reporte. No se registró nada."
NOTHING_TO_CANCEL = "No hay ningún reporte en curso."
ASK_TICKET = (
    "Para consultar un reporte envíame su número de ticket, "
    "por ejemplo: *estado REF-20261128-1A2B3C4D*."
)
UNKNOWN_TICKET = (
    "No encontré ningún reporte con el ticket *{ticket}*. Revisa que esté bien escrito."
)
STATUS = "El reporte *{ticket}* ({tipo}), creado el {fecha}, está *{estado}*."
STATUS_NAMES = {
    "PENDIENTE": "pendiente",
    "EN_PROCESO": "en proceso",
    "ASIGNADO": "asignado",
    "RESUELTO": "resuelto",
    "CERRADO": "cerrado",
    "CANCELADO": "cancelado",
}
TYPE_NAMES = {REFRIGERADOR: "refrigerador", VEHICULO: "vehículo"}
SAP_NOT_FOUND = "No encontré ningún equipo activo con el código SAP *{codigo}*."
SAP_INACTIVE = "El equipo con código SAP *{codigo}* está dado de baja."
SAP_OK = "✅ Equipo {codigo}: {equipo}."
CREATED = (
    "✅ Tu reporte de {tipo} quedó registrado con el ticket *{ticket}*. "
    "Guárdalo: escribe *estado {ticket}* para consultar su avance."
)
SUMMARY_FIELDS = (
    ("codigo_sap", "Código SAP"),
    ("equipo_descripcion", "Equipo"),
    ("numero_empleado", "Número de empleado"),
    ("placa", "Placa"),
    ("problema", "Falla"),
)
VEHICLE_DESCRIPTION = "Placa {placa}: {problema}"

# Audit lines (HistorialSesiones.Descripcion, NVARCHAR(500)): what happened, no user text.
AUDIT = {
    "menu": "Menú mostrado",
    "start": "Inicio de reporte",
    "data": "Datos del reporte recibidos",
    "reprompt": "Dato solicitado de nuevo",
    "created": "Reporte creado {ticket}",
    "cancel": "Conversación cancelada por el usuario",
    "status": "Consulta de estado",
    "unsupported": "Mensaje no soportado ({kind})",
    "expired": "Sesión expirada por inactividad",
    "reset": "Estado desconocido reiniciado",
    "ignored": "Evento registrado sin respuesta ({kind})",
    "switch_asked": "Cambio de reporte preguntado",
    "switch_declined": "Cambio de reporte rechazado",
}
AUDIT_MAX = 500


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text(body: str) -> Reply:
    return Reply("text", clip(body, BODY_MAX))


def buttons(body: str, options: tuple[tuple[str, str], ...]) -> Reply:
    return Reply("buttons", clip(body, BODY_MAX), options)


def prompt(estado: str, datos: Mapping[str, str], notes: Iterable[str] = ()) -> Reply:
    """The question a state waits on, after any notes (one message)."""
    head = "\n".join(notes)
    body = PROMPTS.get(estado, PROMPTS[INICIO])
    if estado == INICIO:
        return buttons(_join(head, body), MENU_OPTIONS)
    if estado in (REFRI_CONFIRMAR, VEHICULO_CONFIRMAR):
        return buttons(_join(head, body, summary(datos), CONFIRM_QUESTION), CONFIRM_OPTIONS)
    return text(_join(head, body))


def offered_options(estado: str, datos: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The options the bot's last message in ``estado`` showed (what a typed number picks)."""
    if datos.get("cambio"):
        return SWITCH_OPTIONS
    if estado == INICIO:
        return MENU_OPTIONS
    if estado in (REFRI_CONFIRMAR, VEHICULO_CONFIRMAR):
        return CONFIRM_OPTIONS
    return ()


def summary(datos: Mapping[str, str]) -> str:
    limits = {"problema": PROBLEMA_IN_SUMMARY_MAX}
    return "\n".join(
        f"• {label}: {clip(str(datos[key]), limits.get(key, LABEL_MAX))}"
        for key, label in SUMMARY_FIELDS
        if datos.get(key)
    )


def equipo_label(descripcion: str, ubicacion: str | None) -> str:
    return clip(" — ".join(part for part in (descripcion, ubicacion) if part) or "-", LABEL_MAX)


def report_status(status: ReportStatus) -> str:
    return STATUS.format(
        ticket=status.numero_ticket,
        tipo=TYPE_NAMES.get(status.tipo_reporte, status.tipo_reporte.lower()),
        fecha=status.fecha_creacion.strftime("%d/%m/%Y"),
        estado=STATUS_NAMES.get(status.estado, status.estado.lower()),
    )


def created(tipo_reporte: str, ticket: str) -> Reply:
    return text(CREATED.format(tipo=TYPE_NAMES[tipo_reporte], ticket=ticket))


def audit(events: Iterable[str], estado_anterior: str, estado_nuevo: str, **values: str) -> str:
    what = "; ".join(AUDIT[event].format(**values) for event in events)
    line = f"{what}: {estado_anterior} -> {estado_nuevo}"
    return clip(" ".join(line.split()), AUDIT_MAX)


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)
