-- 001_add_version_column down: index, then the named default, then the column.
-- (The release note's rollback dropped the column first, which fails on both.)
DROP INDEX IX_SesionesChat_Telefono_Version ON dbo.SesionesChat;
ALTER TABLE dbo.SesionesChat DROP CONSTRAINT DF_SesionesChat_Version;
ALTER TABLE dbo.SesionesChat DROP COLUMN Version;
