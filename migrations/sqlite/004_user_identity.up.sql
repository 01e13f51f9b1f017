-- 004_user_identity: WhatsApp users without a phone number (business-scoped user IDs).
-- Usuarios links a user's phone and BSUID under one stable user key (ClaveUsuario: the
-- BSUID when the first message carried one, else the phone); the Telefono columns that
-- key sessions, history, reports and the outbox hold that user key (SQLite TEXT needs no
-- widening). Every keyed table also records the BSUID and parent BSUID of the message.
CREATE TABLE Usuarios (
    ClaveUsuario       TEXT NOT NULL CONSTRAINT PK_Usuarios PRIMARY KEY,
    Telefono           TEXT NULL,
    UsuarioId          TEXT NULL,
    UsuarioIdPadre     TEXT NULL,
    FechaCreacion      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FechaActualizacion TEXT NULL
);
CREATE UNIQUE INDEX UX_Usuarios_Telefono ON Usuarios (Telefono) WHERE Telefono IS NOT NULL;
CREATE UNIQUE INDEX UX_Usuarios_UsuarioId ON Usuarios (UsuarioId) WHERE UsuarioId IS NOT NULL;

ALTER TABLE SesionesChat ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE SesionesChat ADD COLUMN UsuarioIdPadre TEXT NULL;
ALTER TABLE MensajesChat ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE MensajesChat ADD COLUMN UsuarioIdPadre TEXT NULL;
ALTER TABLE HistorialSesiones ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE HistorialSesiones ADD COLUMN UsuarioIdPadre TEXT NULL;
ALTER TABLE Reportes ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE Reportes ADD COLUMN UsuarioIdPadre TEXT NULL;
ALTER TABLE MensajesSalientes ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE MensajesSalientes ADD COLUMN UsuarioIdPadre TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN UsuarioId TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN UsuarioIdPadre TEXT NULL;
CREATE INDEX IX_MensajesProcesados_UsuarioId ON MensajesProcesados (UsuarioId);
