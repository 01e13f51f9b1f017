-- 001_add_version_column down: the index before the column it covers.
DROP INDEX IX_SesionesChat_Telefono_Version;
ALTER TABLE SesionesChat DROP COLUMN Version;
