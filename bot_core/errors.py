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
