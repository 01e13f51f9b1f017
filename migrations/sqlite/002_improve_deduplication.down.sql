-- 002_improve_deduplication down: the index before the column it covers.
DROP INDEX IX_MensajesProcesados_Telefono;
ALTER TABLE MensajesProcesados DROP COLUMN Telefono;
ALTER TABLE MensajesProcesados DROP COLUMN UltimoReintento;
ALTER TABLE MensajesProcesados DROP COLUMN Reintentos;
