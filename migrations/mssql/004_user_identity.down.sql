-- 004_user_identity down. Narrowing Telefono back to 20 characters fails (and, with
-- XACT_ABORT, rolls the whole migration back) while any row is keyed by a BSUID: a
-- rollback never truncates a user key silently.
DROP INDEX IX_MensajesProcesados_UsuarioId ON dbo.MensajesProcesados;
ALTER TABLE dbo.MensajesProcesados DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.MensajesSalientes DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.MensajesSalientes ALTER COLUMN Telefono NVARCHAR(20) NOT NULL;
ALTER TABLE dbo.Reportes DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.Reportes ALTER COLUMN Telefono NVARCHAR(20) NOT NULL;
DROP INDEX IX_HistorialSesiones_Telefono ON dbo.HistorialSesiones;
ALTER TABLE dbo.HistorialSesiones DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.HistorialSesiones ALTER COLUMN Telefono NVARCHAR(20) NOT NULL;
DROP INDEX IX_MensajesChat_Telefono_Fecha ON dbo.MensajesChat;
ALTER TABLE dbo.MensajesChat DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.MensajesChat ALTER COLUMN Telefono NVARCHAR(20) NOT NULL;
DROP INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat;
ALTER TABLE dbo.SesionesChat DROP CONSTRAINT PK_SesionesChat;
ALTER TABLE dbo.SesionesChat DROP COLUMN UsuarioId, UsuarioIdPadre;
ALTER TABLE dbo.SesionesChat ALTER COLUMN Telefono NVARCHAR(20) NOT NULL;
GO
ALTER TABLE dbo.SesionesChat ADD CONSTRAINT PK_SesionesChat PRIMARY KEY (Telefono);
CREATE INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat (Telefono, Version);
CREATE INDEX IX_MensajesChat_Telefono_Fecha ON dbo.MensajesChat (Telefono, Fecha);
CREATE INDEX IX_HistorialSesiones_Telefono ON dbo.HistorialSesiones (Telefono, FechaAccion);
DROP TABLE dbo.Usuarios;
