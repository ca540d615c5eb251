"""Filesystem storage driver: files under a root directory, blocking I/O in threads.

``put`` writes a temporary file, fsyncs it and renames it over the target, so
readers see the old or the new content, never a mix.  ``move`` fsyncs a file
before renaming it: a committed blob is durable before it becomes visible.
Writers keep up to 1 MiB of chunks (uncopied) before handing them to a thread in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat as stat_
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

from dockyard.registry.storage.driver import CHUNK, FileInfo, PathNotFound, StorageDriver, Writer, clean

_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)


class _FileWriter(Writer):
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._chunks: list[bytes] = []  # kept as they came (no copy), written together by a thread
        self._pending = 0
        self.size = size

    async def write(self, data: bytes) -> None:
        self._chunks.append(data if isinstance(data, bytes) else bytes(data))
        self._pending += len(data)
        self.size += len(data)
        if self._pending >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if self._chunks:
            chunks, self._chunks, self._pending = self._chunks, [], 0
            await asyncio.to_thread(self._f.writelines, chunks)

    async def close(self) -> None:
        if self._f.closed:
            return
        try:
            await self._flush()
        finally:
            await asyncio.to_thread(self._f.close)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_range(f: BinaryIO, size: int) -> bytes:
    return f.read(size)


class FilesystemDriver(StorageDriver):
    """Stores paths as files below ``root`` (created if missing)."""

    name = "filesystem"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _real(self, path: str) -> str:
        rel = clean(path)
        return os.path.join(self.root, rel) if rel else self.root

    async def stat(self, path: str) -> FileInfo | None:
        try:
            st = await asyncio.to_thread(os.stat, self._real(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = stat_.S_ISDIR(st.st_mode)
        return FileInfo(clean(path), 0 if is_dir else st.st_size, is_dir, st.st_mtime)

    async def get(self, path: str) -> bytes:
        real = self._real(path)

        def read() -> bytes:
            with open(real, "rb") as f:
                return f.read()
        try:
            return await asyncio.to_thread(read)
        except OSError as e:
            if e.errno in _MISSING:
                raise PathNotFound(path) from None
            raise

    async def put(self, path: str, data: bytes) -> None:
        real = self._real(path)
        await asyncio.to_thread(self._put, real, data)

    @staticmethod
    def _put(real: str, data: bytes) -> None:
        parent = os.path.dirname(real)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(parent)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        real = self._real(path)
        try:
            f = await asyncio.to_thread(open, real, "rb")
        except OSError as e:
            if e.errno in _MISSING:
                raise PathNotFound(path) from None
            raise
        try:
            if offset:
                f.seek(offset)
            left = -1 if length is None else length
            while left != 0:
                want = CHUNK if left < 0 else min(CHUNK, left)
                chunk = await asyncio.to_thread(_read_range, f, want)
                if not chunk:
                    break
                if left > 0:
                    left -= len(chunk)
                yield chunk
        finally:
            f.close()

    def local_file(self, path: str) -> str | None:
        real = self._real(path)
        return real if os.path.isfile(real) else None

    async def writer(self, path: str, append: bool = False) -> Writer:
        real = self._real(path)

        def open_() -> tuple[BinaryIO, int]:
            os.makedirs(os.path.dirname(real), exist_ok=True)
            f = open(real, "ab" if append else "wb")  # noqa: SIM115 - the writer owns it
            return f, f.seek(0, os.SEEK_END)
        f, size = await asyncio.to_thread(open_)
        return _FileWriter(f, size)

    async def list(self, path: str) -> list[str]:
        try:
            names = await asyncio.to_thread(os.listdir, self._real(path))
        except OSError as e:
            if e.errno in _MISSING:
                raise PathNotFound(path) from None
            raise
        return sorted(n for n in names if not n.startswith(".tmp-"))

    async def move(self, src: str, dst: str) -> None:
        await asyncio.to_thread(self._move, src, self._real(src), self._real(dst))

    @staticmethod
    def _move(src: str, real_src: str, real_dst: str) -> None:
        if not os.path.lexists(real_src):
            raise PathNotFound(src)
        if os.path.isfile(real_src):
            with open(real_src, "rb") as f:
                os.fsync(f.fileno())
        parent = os.path.dirname(real_dst)
        os.makedirs(parent, exist_ok=True)
        if os.path.isdir(real_src) and os.path.isdir(real_dst) and real_src != real_dst:
            shutil.rmtree(real_dst)
        os.replace(real_src, real_dst)
        _fsync_dir(parent)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self._delete, path, self._real(path))

    def _delete(self, path: str, real: str) -> None:
        if real == self.root:
            raise PathNotFound(path)  # the root itself is never deleted
        if os.path.isdir(real) and not os.path.islink(real):
            shutil.rmtree(real)
        elif os.path.lexists(real):
            os.unlink(real)
        else:
            raise PathNotFound(path)

