-- 000_baseline down: drops the whole pre-phase-1 schema (children before parents).
DROP TABLE IF EXISTS dbo.HistorialSesiones;
DROP TABLE IF EXISTS dbo.Reportes;
DROP TABLE IF EXISTS dbo.Equipos;
DROP TABLE IF EXISTS dbo.MensajesChat;
DROP TABLE IF EXISTS dbo.MensajesProcesados;
DROP TABLE IF EXISTS dbo.SesionesChat;
