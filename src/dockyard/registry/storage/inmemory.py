"""In-memory storage driver: a tree of dicts (directories) and bytearrays (files).

Meant for tests and throw-away registries; it shares the filesystem driver's
semantics (directories persist until deleted) so one conformance suite covers both.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Union

from dockyard.registry.storage.driver import CHUNK, FileInfo, PathNotFound, StorageDriver, Writer, clean

_Node = Union["_Dir", "_File"]


class _File:
    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.mtime = time.time()


class _Dir:
    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.mtime = time.time()


class _MemWriter(Writer):
    def __init__(self, node: _File) -> None:
        self._node = node
        self.size = len(node.data)
        self._closed = False

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed writer")
        self._node.data += data
        self._node.mtime = time.time()
        self.size += len(data)

    async def close(self) -> None:
        self._closed = True


class InMemoryDriver(StorageDriver):
    """Everything lives in this process's memory."""

    name = "inmemory"

    def __init__(self) -> None:
        self._root = _Dir()

    def _find(self, path: str) -> _Node | None:
        node: _Node = self._root
        for part in filter(None, clean(path).split("/")):
            if not isinstance(node, _Dir) or part not in node.children:
                return None
            node = node.children[part]
        return node

    def _parent(self, path: str, create: bool) -> tuple[_Dir, str] | None:
        parts = clean(path).split("/")
        if parts == [""]:
            raise PathNotFound(path)  # the root has no parent
        node = self._root
        for part in parts[:-1]:
            child = node.children.get(part)
            if child is None and create:
                child = node.children[part] = _Dir()
            if not isinstance(child, _Dir):
                return None
            node = child
        return node, parts[-1]

    def _file(self, path: str) -> _File:
        node = self._find(path)
        if not isinstance(node, _File):
            raise PathNotFound(path)
        return node

    def _place(self, path: str, node: _Node) -> None:
        found = self._parent(path, create=True)
        if found is None:
            raise PathNotFound(path)  # a parent is a file
        parent, name = found
        parent.children[name] = node
        parent.mtime = time.time()

    async def stat(self, path: str) -> FileInfo | None:
        node = self._find(path)
        if node is None:
            return None
        if isinstance(node, _File):
            return FileInfo(clean(path), len(node.data), False, node.mtime)
        return FileInfo(clean(path), 0, True, node.mtime)

    async def get(self, path: str) -> bytes:
        return bytes(self._file(path).data)

    async def put(self, path: str, data: bytes) -> None:
        self._place(path, _File(data))

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._file(path).data
        end = len(data) if length is None else min(len(data), offset + length)
        for pos in range(offset, end, CHUNK):
            yield bytes(data[pos:min(pos + CHUNK, end)])

    def local_file(self, path: str) -> str | None:
        return None

    async def writer(self, path: str, append: bool = False) -> Writer:
        node = self._find(path)
        if not (append and isinstance(node, _File)):
            node = _File()
            self._place(path, node)
        return _MemWriter(node)

    async def list(self, path: str) -> list[str]:
        node = self._find(path)
        if not isinstance(node, _Dir):
            raise PathNotFound(path)
        return sorted(node.children)

    async def move(self, src: str, dst: str) -> None:
        node = self._find(src)
        found = self._parent(src, create=False)
        if node is None or found is None:
            raise PathNotFound(src)
        self._place(dst, node)
        parent, name = found
        if parent.children.get(name) is node and clean(src) != clean(dst):
            del parent.children[name]

    async def delete(self, path: str) -> None:
        found = self._parent(path, create=False)
        if found is None or found[1] not in found[0].children:
            raise PathNotFound(path)
        del found[0].children[found[1]]
