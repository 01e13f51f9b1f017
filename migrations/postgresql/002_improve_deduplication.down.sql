-- 002_improve_deduplication down.
DROP INDEX IX_MensajesProcesados_Telefono;
ALTER TABLE MensajesProcesados
    DROP COLUMN Reintentos,
    DROP COLUMN UltimoReintento,
    DROP COLUMN Telefono;
