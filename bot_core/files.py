"""Files the bot creates hold user data (messages, pseudonymised phones): owner-only (0600)."""

from __future__ import annotations

import os
from typing import TextIO

PRIVATE_MODE = 0o600


def create_private(path: str | os.PathLike) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    except FileExistsError:
        pass


def open_private_append(path: str | os.PathLike, buffering: int = -1) -> TextIO:
    """``open(path, "a")`` that creates the file with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
    # A string that is not valid Unicode (a lone surrogate) is written escaped, never an error.
    return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace", buffering=buffering)
