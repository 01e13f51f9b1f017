-- 000_baseline: the schema as production had it before phase 1.
-- Every statement is guarded so `botctl migrate baseline` can adopt an existing database.
IF OBJECT_ID(N'dbo.SesionesChat', N'U') IS NULL
CREATE TABLE dbo.SesionesChat (
    Telefono         NVARCHAR(20)  NOT NULL CONSTRAINT PK_SesionesChat PRIMARY KEY,
    Estado           NVARCHAR(50)  NOT NULL CONSTRAINT DF_SesionesChat_Estado DEFAULT N'INICIO',
    DatosTemp        NVARCHAR(MAX) NULL,
    EquipoIdTemp     INT           NULL,
    ContadorMensajes INT           NOT NULL CONSTRAINT DF_SesionesChat_ContadorMensajes DEFAULT 0,
    FechaCreacion    DATETIME2(3)  NOT NULL CONSTRAINT DF_SesionesChat_FechaCreacion DEFAULT SYSUTCDATETIME(),
    UltimaActividad  DATETIME2(3)  NOT NULL CONSTRAINT DF_SesionesChat_UltimaActividad DEFAULT SYSUTCDATETIME()
);

IF OBJECT_ID(N'dbo.MensajesProcesados', N'U') IS NULL
CREATE TABLE dbo.MensajesProcesados (
    MensajeId     NVARCHAR(128) NOT NULL CONSTRAINT PK_MensajesProcesados PRIMARY KEY,
    FechaCreacion DATETIME2(3)  NOT NULL CONSTRAINT DF_MensajesProcesados_FechaCreacion DEFAULT SYSUTCDATETIME()
);

IF OBJECT_ID(N'dbo.MensajesChat', N'U') IS NULL
CREATE TABLE dbo.MensajesChat (
    MensajeChatId BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT PK_MensajesChat PRIMARY KEY,
    Telefono      NVARCHAR(20)  NOT NULL,
    Tipo          CHAR(1)       NOT NULL CONSTRAINT CK_MensajesChat_Tipo CHECK (Tipo IN ('U', 'B')),
    Contenido     NVARCHAR(MAX) NULL,
    MensajeId     NVARCHAR(128) NULL,
    Fecha         DATETIME2(3)  NOT NULL CONSTRAINT DF_MensajesChat_Fecha DEFAULT SYSUTCDATETIME()
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_MensajesChat_Telefono_Fecha' AND object_id = OBJECT_ID(N'dbo.MensajesChat'))
CREATE INDEX IX_MensajesChat_Telefono_Fecha ON dbo.MensajesChat (Telefono, Fecha);

IF OBJECT_ID(N'dbo.Equipos', N'U') IS NULL
CREATE TABLE dbo.Equipos (
    EquipoId    INT IDENTITY(1,1) NOT NULL CONSTRAINT PK_Equipos PRIMARY KEY,
    CodigoSAP   NVARCHAR(20)  NOT NULL CONSTRAINT UQ_Equipos_CodigoSAP UNIQUE,
    Tipo        NVARCHAR(30)  NOT NULL,
    Descripcion NVARCHAR(200) NULL,
    Ubicacion   NVARCHAR(200) NULL,
    Activo      BIT           NOT NULL CONSTRAINT DF_Equipos_Activo DEFAULT 1
);

IF OBJECT_ID(N'dbo.Reportes', N'U') IS NULL
CREATE TABLE dbo.Reportes (
    ReporteId       INT IDENTITY(1,1) NOT NULL CONSTRAINT PK_Reportes PRIMARY KEY,
    NumeroTicket    NVARCHAR(30)  NOT NULL CONSTRAINT UQ_Reportes_NumeroTicket UNIQUE,
    Telefono        NVARCHAR(20)  NOT NULL,
    TipoReporte     NVARCHAR(20)  NOT NULL CONSTRAINT CK_Reportes_TipoReporte CHECK (TipoReporte IN ('REFRIGERADOR', 'VEHICULO')),
    EquipoId        INT           NULL CONSTRAINT FK_Reportes_Equipos REFERENCES dbo.Equipos (EquipoId),
    NumeroEmpleado  NVARCHAR(20)  NULL,
    Descripcion     NVARCHAR(MAX) NULL,
    Estado          NVARCHAR(20)  NOT NULL CONSTRAINT DF_Reportes_Estado DEFAULT N'PENDIENTE',
    MensajeOrigenId NVARCHAR(128) NULL,
    FechaCreacion   DATETIME2(3)  NOT NULL CONSTRAINT DF_Reportes_FechaCreacion DEFAULT SYSUTCDATETIME()
);

-- A filtered unique index: one report per originating message, many reports without one.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'UX_Reportes_MensajeOrigenId' AND object_id = OBJECT_ID(N'dbo.Reportes'))
CREATE UNIQUE INDEX UX_Reportes_MensajeOrigenId ON dbo.Reportes (MensajeOrigenId) WHERE MensajeOrigenId IS NOT NULL;

IF OBJECT_ID(N'dbo.HistorialSesiones', N'U') IS NULL
CREATE TABLE dbo.HistorialSesiones (
    HistorialId    BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT PK_HistorialSesiones PRIMARY KEY,
    Telefono       NVARCHAR(20)  NOT NULL,
    EstadoAnterior NVARCHAR(50)  NULL,
    EstadoNuevo    NVARCHAR(50)  NOT NULL,
    OrigenAccion   NVARCHAR(10)  NOT NULL CONSTRAINT CK_HistorialSesiones_OrigenAccion CHECK (OrigenAccion IN ('BOT', 'USUARIO', 'SISTEMA')),
    Descripcion    NVARCHAR(500) NULL,
    ReporteId      INT           NULL,
    FechaAccion    DATETIME2(3)  NOT NULL CONSTRAINT DF_HistorialSesiones_FechaAccion DEFAULT SYSUTCDATETIME()
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_HistorialSesiones_Telefono' AND object_id = OBJECT_ID(N'dbo.HistorialSesiones'))
CREATE INDEX IX_HistorialSesiones_Telefono ON dbo.HistorialSesiones (Telefono, FechaAccion);
