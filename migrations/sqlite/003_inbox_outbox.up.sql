-- 003_inbox_outbox: MensajesProcesados becomes the inbox (processing state, lease,
-- the payload to process) and MensajesSalientes the outbox of replies.
-- Rows that predate this migration were processed by the old code: default PROCESADO.
ALTER TABLE MensajesProcesados ADD COLUMN Estado TEXT NOT NULL DEFAULT 'PROCESADO';
ALTER TABLE MensajesProcesados ADD COLUMN Payload TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN Intentos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE MensajesProcesados ADD COLUMN LeaseHasta TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN ProcesadoEn TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN UltimoError TEXT NULL;
CREATE INDEX IX_MensajesProcesados_Estado_LeaseHasta ON MensajesProcesados (Estado, LeaseHasta);

CREATE TABLE MensajesSalientes (
    SalienteId         INTEGER NOT NULL CONSTRAINT PK_MensajesSalientes PRIMARY KEY,
    MensajeOrigenId    TEXT    NOT NULL,
    Secuencia          INTEGER NOT NULL,
    Telefono           TEXT    NOT NULL,
    Tipo               TEXT    NOT NULL,
    Contenido          TEXT    NOT NULL,
    Estado             TEXT    NOT NULL DEFAULT 'PENDIENTE',
    Intentos           INTEGER NOT NULL DEFAULT 0,
    ProximoIntento     TEXT    NULL,
    LeaseHasta         TEXT    NULL,
    WamidSaliente      TEXT    NULL,
    CodigoError        TEXT    NULL,
    DetalleError       TEXT    NULL,
    FechaCreacion      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FechaEnvio         TEXT    NULL,
    FechaActualizacion TEXT    NULL,
    CONSTRAINT UQ_MensajesSalientes_Origen_Secuencia UNIQUE (MensajeOrigenId, Secuencia)
);
CREATE INDEX IX_MensajesSalientes_Estado_ProximoIntento ON MensajesSalientes (Estado, ProximoIntento);
CREATE INDEX IX_MensajesSalientes_WamidSaliente ON MensajesSalientes (WamidSaliente);
