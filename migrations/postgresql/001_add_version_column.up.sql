-- 001_add_version_column: optimistic locking (phase-1 fix 1.1); existing rows get Version = 0.
ALTER TABLE SesionesChat ADD COLUMN Version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IX_SesionesChat_Telefono_Version ON SesionesChat (Telefono, Version);
