"""Demo data for the embedded database: a few refrigerators to report on."""

from __future__ import annotations

from bot_core.storage import Database

DEMO_EQUIPOS = (
    ("4001234", "REFRIGERADOR", "Refrigerador vertical 2 puertas", "Tienda Centro"),
    ("4001235", "REFRIGERADOR", "Enfriador de bebidas", "Tienda Norte"),
    ("4005678", "REFRIGERADOR", "Congelador horizontal", "Bodega Sur"),
    ("4009999", "REFRIGERADOR", "Refrigerador dado de baja", "Almacén"),
)


def seed_demo_equipment(db: Database) -> int:
    """Insert the demo rows that are missing; returns how many were added."""
    added = 0
    with db.connection() as conn:
        with db.transaction(conn) as cur:
            for codigo, tipo, descripcion, ubicacion in DEMO_EQUIPOS:
                cur.execute("SELECT 1 FROM Equipos WHERE CodigoSAP = ?", (codigo,))
                if cur.fetchone() is None:
                    activo = codigo != "4009999"
                    cur.execute("INSERT INTO Equipos (CodigoSAP, Tipo, Descripcion, Ubicacion, Activo) "
                                "VALUES (?, ?, ?, ?, ?)", (codigo, tipo, descripcion, ubicacion, activo))
                    added += 1
    return added
