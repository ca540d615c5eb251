"""The storage driver interface the registry store is written against.

Paths are "/"-separated and relative to the driver's root ("" or "/" is the
root itself); ``clean`` rejects "." and ".." so no path escapes the root.
Every method is async; ``reader`` is an async generator (iterate it, do not
await it) so that big blobs stream in bounded chunks.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.errors import InvalidArgument, NotFound

CHUNK = 1 << 20  # reads and buffered writes move at most 1 MiB at a time


@dataclass(frozen=True)
class FileInfo:
    """What ``stat`` knows about a path."""

    path: str
    size: int
    is_dir: bool
    mtime: float


class PathNotFound(NotFound):
    """The path does not exist in the driver (or is not of the kind the call needs)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}", path=path)


class Writer(abc.ABC):
    """An open file being written; ``size`` counts the bytes in it so far."""

    size: int

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Append ``data``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush everything written; the writer cannot be used afterwards."""


def clean(path: str) -> str:
    """``path`` without leading/trailing "/", or InvalidArgument for ".", ".." or empty parts."""
    stripped = path.strip("/")
    if not stripped:
        return ""
    parts = stripped.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"invalid storage path {path!r}", path=path)
    return stripped


class StorageDriver(abc.ABC):
    """Blob-store primitives; implementations: filesystem, inmemory."""

    name: str

    @abc.abstractmethod
    async def stat(self, path: str) -> FileInfo | None:
        """Size, kind and mtime of ``path``, or None if it does not exist."""

    @abc.abstractmethod
    async def get(self, path: str) -> bytes:
        """The whole content of a (small) file; PathNotFound if absent or a directory."""

    @abc.abstractmethod
    async def put(self, path: str, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically, creating parent directories."""

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (default: to the end) from ``offset``; PathNotFound on first iteration."""

    @abc.abstractmethod
    def local_file(self, path: str) -> str | None:
        """The real file behind ``path`` (for sendfile), or None (absent, or not a local driver)."""

    @abc.abstractmethod
    async def writer(self, path: str, append: bool = False) -> Writer:
        """Open ``path`` for writing (truncated, or appended to), creating parent directories."""

    @abc.abstractmethod
    async def list(self, path: str) -> list[str]:
        """Sorted child names of a directory; PathNotFound if absent or not a directory."""

    @abc.abstractmethod
    async def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` atomically, replacing ``dst``; PathNotFound if ``src`` is absent."""

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Remove a file or a whole directory tree; PathNotFound if absent."""

    def close(self) -> None:  # a hook: drivers holding connections override it
        """Release what the driver holds open (connections); default: nothing."""
