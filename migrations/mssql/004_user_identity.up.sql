-- 004_user_identity: WhatsApp users without a phone number (business-scoped user IDs).
-- A BSUID is a 2-letter country code, a dot, an optional "ENT." (parent BSUID) and up to
-- 128 alphanumerics: at most 135 characters. Usuarios links a user's phone and BSUID under
-- one stable user key (ClaveUsuario: the BSUID when the first message carried one, else
-- the phone); the Telefono columns that key sessions, history, reports and the outbox
-- now hold that user key, so they are widened to 135. Every keyed table also records the
-- BSUID and parent BSUID the message came with. A PRIMARY KEY or indexed column cannot be
-- altered in place: its index and constraint are dropped first and recreated after.
CREATE TABLE dbo.Usuarios (
    ClaveUsuario       NVARCHAR(135) NOT NULL CONSTRAINT PK_Usuarios PRIMARY KEY,
    Telefono           NVARCHAR(20)  NULL,
    UsuarioId          NVARCHAR(135) NULL,
    UsuarioIdPadre     NVARCHAR(135) NULL,
    FechaCreacion      DATETIME2(3)  NOT NULL CONSTRAINT DF_Usuarios_FechaCreacion DEFAULT SYSUTCDATETIME(),
    FechaActualizacion DATETIME2(3)  NULL
);
CREATE UNIQUE INDEX UX_Usuarios_Telefono ON dbo.Usuarios (Telefono) WHERE Telefono IS NOT NULL;
CREATE UNIQUE INDEX UX_Usuarios_UsuarioId ON dbo.Usuarios (UsuarioId) WHERE UsuarioId IS NOT NULL;

DROP INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat;
ALTER TABLE dbo.SesionesChat DROP CONSTRAINT PK_SesionesChat;
ALTER TABLE dbo.SesionesChat ALTER COLUMN Telefono NVARCHAR(135) NOT NULL;
ALTER TABLE dbo.SesionesChat ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
DROP INDEX IX_MensajesChat_Telefono_Fecha ON dbo.MensajesChat;
ALTER TABLE dbo.MensajesChat ALTER COLUMN Telefono NVARCHAR(135) NOT NULL;
ALTER TABLE dbo.MensajesChat ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
DROP INDEX IX_HistorialSesiones_Telefono ON dbo.HistorialSesiones;
ALTER TABLE dbo.HistorialSesiones ALTER COLUMN Telefono NVARCHAR(135) NOT NULL;
ALTER TABLE dbo.HistorialSesiones ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
ALTER TABLE dbo.Reportes ALTER COLUMN Telefono NVARCHAR(135) NOT NULL;
ALTER TABLE dbo.Reportes ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
ALTER TABLE dbo.MensajesSalientes ALTER COLUMN Telefono NVARCHAR(135) NOT NULL;
ALTER TABLE dbo.MensajesSalientes ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
ALTER TABLE dbo.MensajesProcesados ADD UsuarioId NVARCHAR(135) NULL, UsuarioIdPadre NVARCHAR(135) NULL;
GO
ALTER TABLE dbo.SesionesChat ADD CONSTRAINT PK_SesionesChat PRIMARY KEY (Telefono);
CREATE INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat (Telefono, Version);
CREATE INDEX IX_MensajesChat_Telefono_Fecha ON dbo.MensajesChat (Telefono, Fecha);
CREATE INDEX IX_HistorialSesiones_Telefono ON dbo.HistorialSesiones (Telefono, FechaAccion);
CREATE INDEX IX_MensajesProcesados_UsuarioId ON dbo.MensajesProcesados (UsuarioId);
