"""Helpers shared by the registry store tests: run a coroutine, chunk a body, make a driver."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from dockyard.registry.storage.driver import StorageDriver
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver

T = TypeVar("T")
DRIVER_KINDS = ["filesystem", "inmemory"]


def run(aw: Awaitable[T]) -> T:
    """Await ``aw`` in a fresh event loop."""
    async def main() -> T:
        return await aw
    return asyncio.run(main())


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """An upload body arriving in ``parts``."""
    for p in parts:
        yield p


def driver_for(kind: str, tmp_path: object) -> StorageDriver:
    """A fresh driver of ``kind`` ("filesystem" under tmp_path/root, or "inmemory")."""
    if kind == "filesystem":
        return FilesystemDriver(os.path.join(str(tmp_path), "root"))
    return InMemoryDriver()
