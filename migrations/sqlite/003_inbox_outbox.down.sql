-- 003_inbox_outbox down: the outbox table, then the inbox columns (index first).
DROP TABLE MensajesSalientes;
DROP INDEX IX_MensajesProcesados_Estado_LeaseHasta;
ALTER TABLE MensajesProcesados DROP COLUMN UltimoError;
ALTER TABLE MensajesProcesados DROP COLUMN ProcesadoEn;
ALTER TABLE MensajesProcesados DROP COLUMN LeaseHasta;
ALTER TABLE MensajesProcesados DROP COLUMN Intentos;
ALTER TABLE MensajesProcesados DROP COLUMN Payload;
ALTER TABLE MensajesProcesados DROP COLUMN Estado;
