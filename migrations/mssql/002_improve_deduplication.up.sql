-- 002_improve_deduplication: retry count of redelivered messages (phase-1 fix 1.2).
ALTER TABLE dbo.MensajesProcesados
    ADD Reintentos      INT          NOT NULL CONSTRAINT DF_MensajesProcesados_Reintentos DEFAULT 0,
        UltimoReintento DATETIME2(3) NULL,
        Telefono        NVARCHAR(20) NULL;
GO
CREATE INDEX IX_MensajesProcesados_Telefono ON dbo.MensajesProcesados (Telefono);
