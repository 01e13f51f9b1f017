-- 004_user_identity down. Narrowing Telefono back to 20 characters fails (and rolls the
-- whole migration back) while any row is keyed by a BSUID: never a silent truncation.
DROP INDEX IX_MensajesProcesados_UsuarioId;
ALTER TABLE MensajesProcesados DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre;
ALTER TABLE MensajesSalientes DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre,
    ALTER COLUMN Telefono TYPE VARCHAR(20);
ALTER TABLE Reportes DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre,
    ALTER COLUMN Telefono TYPE VARCHAR(20);
ALTER TABLE HistorialSesiones DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre,
    ALTER COLUMN Telefono TYPE VARCHAR(20);
ALTER TABLE MensajesChat DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre,
    ALTER COLUMN Telefono TYPE VARCHAR(20);
ALTER TABLE SesionesChat DROP COLUMN UsuarioId, DROP COLUMN UsuarioIdPadre,
    ALTER COLUMN Telefono TYPE VARCHAR(20);
DROP TABLE Usuarios;
