-- 003_inbox_outbox down: the outbox table, then the inbox columns (index first).
DROP TABLE MensajesSalientes;
DROP INDEX IX_MensajesProcesados_Estado_LeaseHasta;
ALTER TABLE MensajesProcesados
    DROP COLUMN Estado,
    DROP COLUMN Payload,
    DROP COLUMN Intentos,
    DROP COLUMN LeaseHasta,
    DROP COLUMN ProcesadoEn,
    DROP COLUMN UltimoError;
