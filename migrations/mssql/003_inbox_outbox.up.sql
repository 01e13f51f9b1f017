-- 003_inbox_outbox: MensajesProcesados becomes the inbox (processing state, lease,
-- the payload to process) and MensajesSalientes the outbox of replies.
-- Rows that predate this migration were processed by the old code: default PROCESADO.
ALTER TABLE dbo.MensajesProcesados
    ADD Estado       NVARCHAR(20)  NOT NULL CONSTRAINT DF_MensajesProcesados_Estado DEFAULT N'PROCESADO',
        Payload      NVARCHAR(MAX) NULL,
        Intentos     INT           NOT NULL CONSTRAINT DF_MensajesProcesados_Intentos DEFAULT 0,
        LeaseHasta   DATETIME2(3)  NULL,
        ProcesadoEn  DATETIME2(3)  NULL,
        UltimoError  NVARCHAR(400) NULL;
GO
CREATE INDEX IX_MensajesProcesados_Estado_LeaseHasta ON dbo.MensajesProcesados (Estado, LeaseHasta);

CREATE TABLE dbo.MensajesSalientes (
    SalienteId         BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT PK_MensajesSalientes PRIMARY KEY,
    MensajeOrigenId    NVARCHAR(128) NOT NULL,
    Secuencia          INT           NOT NULL,
    Telefono           NVARCHAR(20)  NOT NULL,
    Tipo               NVARCHAR(10)  NOT NULL,
    Contenido          NVARCHAR(MAX) NOT NULL,
    Estado             NVARCHAR(20)  NOT NULL CONSTRAINT DF_MensajesSalientes_Estado DEFAULT N'PENDIENTE',
    Intentos           INT           NOT NULL CONSTRAINT DF_MensajesSalientes_Intentos DEFAULT 0,
    ProximoIntento     DATETIME2(3)  NULL,
    LeaseHasta         DATETIME2(3)  NULL,
    WamidSaliente      NVARCHAR(128) NULL,
    CodigoError        NVARCHAR(20)  NULL,
    DetalleError       NVARCHAR(400) NULL,
    FechaCreacion      DATETIME2(3)  NOT NULL CONSTRAINT DF_MensajesSalientes_FechaCreacion DEFAULT SYSUTCDATETIME(),
    FechaEnvio         DATETIME2(3)  NULL,
    FechaActualizacion DATETIME2(3)  NULL,
    CONSTRAINT UQ_MensajesSalientes_Origen_Secuencia UNIQUE (MensajeOrigenId, Secuencia)
);

CREATE INDEX IX_MensajesSalientes_Estado_ProximoIntento ON dbo.MensajesSalientes (Estado, ProximoIntento);
CREATE INDEX IX_MensajesSalientes_WamidSaliente ON dbo.MensajesSalientes (WamidSaliente);
