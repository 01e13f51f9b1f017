-- 003_inbox_outbox down: the outbox table, then the inbox columns (index and defaults first).
DROP TABLE dbo.MensajesSalientes;
DROP INDEX IX_MensajesProcesados_Estado_LeaseHasta ON dbo.MensajesProcesados;
ALTER TABLE dbo.MensajesProcesados DROP CONSTRAINT DF_MensajesProcesados_Estado;
ALTER TABLE dbo.MensajesProcesados DROP CONSTRAINT DF_MensajesProcesados_Intentos;
ALTER TABLE dbo.MensajesProcesados DROP COLUMN Estado, Payload, Intentos, LeaseHasta, ProcesadoEn, UltimoError;
