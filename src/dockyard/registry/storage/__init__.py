"""Storage drivers: one small async interface (driver.py), filesystem and in-memory implementations."""

from __future__ import annotations

from dockyard.registry.storage.driver import FileInfo, PathNotFound, StorageDriver, Writer

__all__ = ["FileInfo", "PathNotFound", "StorageDriver", "Writer"]
