-- 002_improve_deduplication: retry count of redelivered messages (phase-1 fix 1.2).
ALTER TABLE MensajesProcesados ADD COLUMN Reintentos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE MensajesProcesados ADD COLUMN UltimoReintento TEXT NULL;
ALTER TABLE MensajesProcesados ADD COLUMN Telefono TEXT NULL;
CREATE INDEX IX_MensajesProcesados_Telefono ON MensajesProcesados (Telefono);
