"""Exceptions shared by the bot, the migration runner and the CLI."""


class BotctlError(Exception):
    """Base of every error botctl reports as one readable line."""


class ConfigError(BotctlError):
    """Bad configuration or bad command-line input (exit code 2)."""


class DatabaseUnavailable(BotctlError):
    """The database cannot be reached or refused the connection."""


class ConcurrencyError(BotctlError):
    """A conditional session write matched no row: someone else won (retryable)."""

    def __init__(self, operation: str, expected_version: int):
        super().__init__(
            f"ConcurrencyError: {operation} expected Version={expected_version}, row changed"
        )
        self.operation = operation
        self.expected_version = expected_version


def is_unique_violation(exc: Exception) -> bool:
    """A unique or primary-key violation, as any of the three dialects' drivers word it."""
    text = str(exc).lower()
    return ("unique" in text or "duplicate key" in text or "primary key" in text
            or "23505" in text or "2627" in text)
