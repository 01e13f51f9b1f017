"""An in-process lock per key (a phone): its messages are processed one at a time.

Across processes the session version check guards; within one process this
avoids needless conflicts and keeps one phone's messages in arrival order.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator


class KeyedLock:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:  # forget idle keys so the map does not grow forever
                del self._users[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
