-- 000_baseline: the schema as production had it before phase 1 (IF NOT EXISTS-guarded,
-- so `botctl migrate baseline` can adopt an existing database).
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS', which sorts as time does.
CREATE TABLE IF NOT EXISTS SesionesChat (
    Telefono         TEXT    NOT NULL CONSTRAINT PK_SesionesChat PRIMARY KEY,
    Estado           TEXT    NOT NULL DEFAULT 'INICIO',
    DatosTemp        TEXT    NULL,
    EquipoIdTemp     INTEGER NULL,
    ContadorMensajes INTEGER NOT NULL DEFAULT 0,
    FechaCreacion    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UltimaActividad  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE IF NOT EXISTS MensajesProcesados (
    MensajeId     TEXT NOT NULL CONSTRAINT PK_MensajesProcesados PRIMARY KEY,
    FechaCreacion TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE IF NOT EXISTS MensajesChat (
    MensajeChatId INTEGER NOT NULL CONSTRAINT PK_MensajesChat PRIMARY KEY,
    Telefono      TEXT    NOT NULL,
    Tipo          TEXT    NOT NULL CONSTRAINT CK_MensajesChat_Tipo CHECK (Tipo IN ('U', 'B')),
    Contenido     TEXT    NULL,
    MensajeId     TEXT    NULL,
    Fecha         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX IF NOT EXISTS IX_MensajesChat_Telefono_Fecha ON MensajesChat (Telefono, Fecha);

CREATE TABLE IF NOT EXISTS Equipos (
    EquipoId    INTEGER NOT NULL CONSTRAINT PK_Equipos PRIMARY KEY,
    CodigoSAP   TEXT    NOT NULL CONSTRAINT UQ_Equipos_CodigoSAP UNIQUE,
    Tipo        TEXT    NOT NULL,
    Descripcion TEXT    NULL,
    Ubicacion   TEXT    NULL,
    Activo      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS Reportes (
    ReporteId       INTEGER NOT NULL CONSTRAINT PK_Reportes PRIMARY KEY,
    NumeroTicket    TEXT    NOT NULL CONSTRAINT UQ_Reportes_NumeroTicket UNIQUE,
    Telefono        TEXT    NOT NULL,
    TipoReporte     TEXT    NOT NULL CONSTRAINT CK_Reportes_TipoReporte CHECK (TipoReporte IN ('REFRIGERADOR', 'VEHICULO')),
    EquipoId        INTEGER NULL CONSTRAINT FK_Reportes_Equipos REFERENCES Equipos (EquipoId),
    NumeroEmpleado  TEXT    NULL,
    Descripcion     TEXT    NULL,
    Estado          TEXT    NOT NULL DEFAULT 'PENDIENTE',
    MensajeOrigenId TEXT    NULL,
    FechaCreacion   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE UNIQUE INDEX IF NOT EXISTS UX_Reportes_MensajeOrigenId ON Reportes (MensajeOrigenId) WHERE MensajeOrigenId IS NOT NULL;

CREATE TABLE IF NOT EXISTS HistorialSesiones (
    HistorialId    INTEGER NOT NULL CONSTRAINT PK_HistorialSesiones PRIMARY KEY,
    Telefono       TEXT    NOT NULL,
    EstadoAnterior TEXT    NULL,
    EstadoNuevo    TEXT    NOT NULL,
    OrigenAccion   TEXT    NOT NULL CONSTRAINT CK_HistorialSesiones_OrigenAccion CHECK (OrigenAccion IN ('BOT', 'USUARIO', 'SISTEMA')),
    Descripcion    TEXT    NULL,
    ReporteId      INTEGER NULL,
    FechaAccion    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX IF NOT EXISTS IX_HistorialSesiones_Telefono ON HistorialSesiones (Telefono, FechaAccion);
