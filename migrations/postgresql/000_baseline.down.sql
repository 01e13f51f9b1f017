-- 000_baseline down: drops the whole pre-phase-1 schema (children before parents).
DROP TABLE IF EXISTS HistorialSesiones;
DROP TABLE IF EXISTS Reportes;
DROP TABLE IF EXISTS Equipos;
DROP TABLE IF EXISTS MensajesChat;
DROP TABLE IF EXISTS MensajesProcesados;
DROP TABLE IF EXISTS SesionesChat;
