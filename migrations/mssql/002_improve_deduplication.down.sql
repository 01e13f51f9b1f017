-- 002_improve_deduplication down (the release note misspelt the table as MensajesProcessados).
DROP INDEX IX_MensajesProcesados_Telefono ON dbo.MensajesProcesados;
ALTER TABLE dbo.MensajesProcesados DROP CONSTRAINT DF_MensajesProcesados_Reintentos;
ALTER TABLE dbo.MensajesProcesados DROP COLUMN Reintentos, UltimoReintento, Telefono;
