"""Upload sessions: data appended under ``_uploads/<uuid>``, digested while it is written.

The running digest of each session is kept in memory between requests; after
a restart it is rebuilt by reading the data back once.  A lock per session
serialises PATCH/PUT so offsets and digests stay consistent.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from collections.abc import AsyncIterator

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import paths
from dockyard.registry.store.blobs import BlobStore

_Key = tuple[str, str]


class UploadStore:
    """Start, append to, finish and cancel blob uploads."""

    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs
        self._digesters: dict[_Key, digests.Digester] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}

    async def start(self, repo: str) -> str:
        """Create an empty session and return its id."""
        uuid = str(uuidlib.uuid4())
        await self.driver.put(paths.upload_started(repo, uuid), repr(time.time()).encode())
        w = await self.driver.writer(paths.upload_data(repo, uuid))
        await w.close()
        self._digesters[(repo, uuid)] = digests.Digester()
        return uuid

    async def offset(self, repo: str, uuid: str) -> int:
        """Bytes received so far; BLOB_UPLOAD_UNKNOWN if there is no such session."""
        info = await self.driver.stat(paths.upload_data(repo, paths.check_uuid(uuid)))
        if info is None or info.is_dir:
            raise errors.blob_upload_unknown({"uuid": uuid})
        return info.size

    def _lock(self, key: _Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def append(self, repo: str, uuid: str, chunks: AsyncIterator[bytes], start: int | None) -> int:
        """Append ``chunks``; ``start`` must equal the current offset (else RANGE_INVALID)."""
        async with self._lock((repo, uuid)):
            current = await self.offset(repo, uuid)
            if start is not None and start != current:
                raise errors.range_invalid({"offset": current, "start": start})
            return await self._append(repo, uuid, chunks)

    async def _append(self, repo: str, uuid: str, chunks: AsyncIterator[bytes]) -> int:
        digester = await self._digester(repo, uuid)
        w = await self.driver.writer(paths.upload_data(repo, uuid), append=True)
        try:
            async for chunk in chunks:
                if chunk:
                    await w.write(chunk)
                    digester.update(chunk)
        finally:
            await w.close()
        return w.size

    async def _digester(self, repo: str, uuid: str) -> digests.Digester:
        """The running sha256 of the session, rebuilt from the data if lost or out of step."""
        key = (repo, uuid)
        size = await self.offset(repo, uuid)
        d = self._digesters.get(key)
        if d is None or d.size != size:
            d = await self._digest_data(repo, uuid, "sha256")
            self._digesters[key] = d
        return d

    async def _digest_data(self, repo: str, uuid: str, algorithm: str) -> digests.Digester:
        d = digests.Digester(algorithm)
        async for chunk in self.driver.reader(paths.upload_data(repo, uuid)):
            d.update(chunk)
        return d

    async def finish(self, repo: str, uuid: str, digest: str, chunks: AsyncIterator[bytes] | None) -> None:
        """Append the last chunk, verify ``digest``, commit the blob and link it into ``repo``.

        On a mismatch the session is removed and DIGEST_INVALID raised; nothing becomes visible.
        """
        paths.check_digest(digest)
        async with self._lock((repo, uuid)):
            await self.offset(repo, uuid)
            if chunks is not None:
                await self._append(repo, uuid, chunks)
            actual = await self._final_digest(repo, uuid, digests.algorithm_of(digest))
            if actual != digest:
                await self._remove(repo, uuid)
                raise errors.digest_invalid({"digest": digest, "actual": actual})
            # link first: a fresh link is what tells a concurrent GC the blob is wanted (store/gc.py)
            await self.blobs.link(repo, digest)
            await self.blobs.commit(paths.upload_data(repo, uuid), digest)
            await self._remove(repo, uuid)

    async def _final_digest(self, repo: str, uuid: str, algorithm: str) -> str:
        if algorithm == "sha256":
            return (await self._digester(repo, uuid)).digest()
        return (await self._digest_data(repo, uuid, algorithm)).digest()

    async def cancel(self, repo: str, uuid: str) -> None:
        """Drop the session and its data; BLOB_UPLOAD_UNKNOWN if there is none."""
        async with self._lock((repo, paths.check_uuid(uuid))):
            await self.offset(repo, uuid)
            await self._remove(repo, uuid)

    async def _remove(self, repo: str, uuid: str) -> None:
        self._digesters.pop((repo, uuid), None)
        self._locks.pop((repo, uuid), None)
        try:
            await self.driver.delete(paths.upload_dir(repo, uuid))
        except PathNotFound:
            pass
