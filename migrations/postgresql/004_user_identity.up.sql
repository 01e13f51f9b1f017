-- 004_user_identity: WhatsApp users without a phone number (business-scoped user IDs).
-- A BSUID is a 2-letter country code, a dot, an optional "ENT." (parent BSUID) and up to
-- 128 alphanumerics: at most 135 characters. Usuarios links a user's phone and BSUID under
-- one stable user key (ClaveUsuario: the BSUID when the first message carried one, else
-- the phone); the Telefono columns that key sessions, history, reports and the outbox
-- now hold that user key, so they are widened to 135. Every keyed table also records the
-- BSUID and parent BSUID the message came with.
CREATE TABLE Usuarios (
    ClaveUsuario       VARCHAR(135) NOT NULL CONSTRAINT PK_Usuarios PRIMARY KEY,
    Telefono           VARCHAR(20)  NULL,
    UsuarioId          VARCHAR(135) NULL,
    UsuarioIdPadre     VARCHAR(135) NULL,
    FechaCreacion      TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    FechaActualizacion TIMESTAMP(3) NULL
);
CREATE UNIQUE INDEX UX_Usuarios_Telefono ON Usuarios (Telefono) WHERE Telefono IS NOT NULL;
CREATE UNIQUE INDEX UX_Usuarios_UsuarioId ON Usuarios (UsuarioId) WHERE UsuarioId IS NOT NULL;

ALTER TABLE SesionesChat ALTER COLUMN Telefono TYPE VARCHAR(135),
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
ALTER TABLE MensajesChat ALTER COLUMN Telefono TYPE VARCHAR(135),
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
ALTER TABLE HistorialSesiones ALTER COLUMN Telefono TYPE VARCHAR(135),
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
ALTER TABLE Reportes ALTER COLUMN Telefono TYPE VARCHAR(135),
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
ALTER TABLE MensajesSalientes ALTER COLUMN Telefono TYPE VARCHAR(135),
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
ALTER TABLE MensajesProcesados
    ADD COLUMN UsuarioId VARCHAR(135) NULL, ADD COLUMN UsuarioIdPadre VARCHAR(135) NULL;
CREATE INDEX IX_MensajesProcesados_UsuarioId ON MensajesProcesados (UsuarioId);
