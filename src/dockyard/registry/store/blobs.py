"""Blobs: content-addressed data shared by all repositories, visible to a repository through links.

A blob is readable in a repository when the repository links it as a layer
(``_layers``) or as a manifest revision; the data itself lives once under
``blobs/``.  Unlinking never removes the data (that is garbage collection's job).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import paths


class BlobStore:
    """Global blob data plus per-repository links."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def global_size(self, d: str) -> int | None:
        """Size of the stored blob data, or None if it is not stored."""
        info = await self.driver.stat(paths.blob_data(d))
        return None if info is None or info.is_dir else info.size

    async def is_linked(self, repo: str, d: str) -> bool:
        """True when ``repo`` links ``d`` as a layer/config blob or a manifest revision."""
        for link in (paths.layer_link(repo, d), paths.revision_link(repo, d)):
            if await self.driver.stat(link) is not None:
                return True
        return False

    async def size(self, repo: str, d: str) -> int:
        """Size of ``d`` as seen from ``repo``; BLOB_UNKNOWN unless linked there and stored."""
        if await self.is_linked(repo, d):
            size = await self.global_size(d)
            if size is not None:
                return size
        raise errors.blob_unknown({"digest": d})

    async def local_file(self, repo: str, d: str) -> str | None:
        """The real file of ``d`` for sendfile (None for non-local drivers); BLOB_UNKNOWN if absent."""
        await self.size(repo, d)
        return self.driver.local_file(paths.blob_data(d))

    async def reader(self, repo: str, d: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        """Stream ``d`` from ``repo``; BLOB_UNKNOWN (on first iteration) if absent."""
        await self.size(repo, d)
        try:
            async for chunk in self.driver.reader(paths.blob_data(d), offset, length):
                yield chunk
        except PathNotFound:
            raise errors.blob_unknown({"digest": d}) from None

    async def get(self, d: str) -> bytes:
        """The whole data of a small blob (a manifest)."""
        try:
            return await self.driver.get(paths.blob_data(d))
        except PathNotFound:
            raise errors.blob_unknown({"digest": d}) from None

    async def put(self, d: str, data: bytes) -> None:
        """Store small data (a manifest) under its digest, unless already stored."""
        if await self.global_size(d) is None:
            await self.driver.put(paths.blob_data(d), data)

    async def commit(self, src: str, d: str) -> None:
        """Move verified upload data at ``src`` into ``blobs/`` (or drop it if ``d`` is stored already)."""
        if await self.global_size(d) is None:
            await self.driver.move(src, paths.blob_data(d))
        else:
            await self.driver.delete(src)

    async def link(self, repo: str, d: str) -> None:
        """Make ``d`` visible in ``repo`` as a layer/config blob."""
        await self.driver.put(paths.layer_link(repo, d), d.encode())

    async def unlink(self, repo: str, d: str) -> None:
        """Remove ``repo``'s layer link to ``d``; BLOB_UNKNOWN if there is none."""
        try:
            await self.driver.delete(paths.layer_link_dir(repo, d))
        except PathNotFound:
            raise errors.blob_unknown({"digest": d}) from None
