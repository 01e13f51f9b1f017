-- 004_user_identity down: the inbox index first, then the columns, then Usuarios.
DROP INDEX IX_MensajesProcesados_UsuarioId;
ALTER TABLE MensajesProcesados DROP COLUMN UsuarioIdPadre;
ALTER TABLE MensajesProcesados DROP COLUMN UsuarioId;
ALTER TABLE MensajesSalientes DROP COLUMN UsuarioIdPadre;
ALTER TABLE MensajesSalientes DROP COLUMN UsuarioId;
ALTER TABLE Reportes DROP COLUMN UsuarioIdPadre;
ALTER TABLE Reportes DROP COLUMN UsuarioId;
ALTER TABLE HistorialSesiones DROP COLUMN UsuarioIdPadre;
ALTER TABLE HistorialSesiones DROP COLUMN UsuarioId;
ALTER TABLE MensajesChat DROP COLUMN UsuarioIdPadre;
ALTER TABLE MensajesChat DROP COLUMN UsuarioId;
ALTER TABLE SesionesChat DROP COLUMN UsuarioIdPadre;
ALTER TABLE SesionesChat DROP COLUMN UsuarioId;
DROP TABLE Usuarios;
