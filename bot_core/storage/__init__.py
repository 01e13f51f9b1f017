"""Storage: database URLs and one small DB-API interface for sqlite, postgresql and mssql."""

from bot_core.storage.database import Connection, Database, database_from_config, open_database
from bot_core.storage.url import DIALECTS, DatabaseURL, parse_db_url

__all__ = ["Connection", "Database", "database_from_config", "DatabaseURL", "DIALECTS", "open_database", "parse_db_url"]
