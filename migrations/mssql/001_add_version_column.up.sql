-- 001_add_version_column: optimistic locking (phase-1 fix 1.1).
-- The default is named so the down script can drop it; existing rows get Version = 0.
ALTER TABLE dbo.SesionesChat
    ADD Version INT NOT NULL CONSTRAINT DF_SesionesChat_Version DEFAULT 0;
GO
-- A new batch: SQL Server compiles a batch whole, so the column must exist before this one.
CREATE INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat (Telefono, Version);
