"""S3-compatible storage driver (AWS S3, SeaweedFS, MinIO, Ceph RGW...): ``storage: {s3: {...}}``.

Client library: boto3, each blocking call in ``asyncio.to_thread`` (s3_client.py).  Chosen over
aiobotocore because aiobotocore pins botocore to a narrow range and aiohttp to its own bounds, which
would tie this project's aiohttp (>=3.9, shared with the registry server and the engine) to another
project's release cadence; boto3 is the reference client, thread-safe, and brings s3transfer's
managed multipart copy for free.  The thread hop costs microseconds against network round trips.

Layout: driver path ``p`` is the key ``<rootdirectory>/p`` in ``bucket``.  Directories are key
prefixes; S3 has no empty directories, yet the store relies on the filesystem semantics
"directories persist until deleted" (an emptied tag list is ``[]``, not unknown), so ``delete`` and
``move`` leave a zero-byte marker key ``<parent>/`` behind, the same convention S3 consoles use for
folders.  Listing ignores markers' own names.  ``delete`` also removes the "dir/" keys of the tree
it removes, which is what servers that keep real folders (SeaweedFS) need to forget them.

Semantics per call: ``put`` is one PutObject (atomic); ``writer`` is a buffered multipart upload
(s3_writer.py, parts of ``chunksize``), ``append=True`` continues the object; ``reader`` is a
ranged GetObject streamed in CHUNK reads; ``move`` is a server-side copy (multipart above
multipartcopythresholdsize, so big blobs never pass through this process) then a delete;
``local_file`` is None, so the server streams blobs through ``reader``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from dockyard.registry.storage.driver import CHUNK, FileInfo, PathNotFound, StorageDriver, Writer, clean
from dockyard.registry.storage.s3_client import Missing, RangeNotSatisfiable, S3Client
from dockyard.registry.storage.s3_config import S3Settings, parse
from dockyard.registry.storage.s3_writer import S3Writer


class S3Driver(StorageDriver):
    """Registry storage in one S3 bucket, under ``rootdirectory``."""

    name = "s3"

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.s3 = S3Client(settings, client)
        self._root = settings.root_directory.strip("/")

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> "S3Driver":
        """A driver for the raw ``storage.s3`` section; InvalidArgument names a bad key."""
        return cls(parse(raw))

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.s3.close()

    # -- keys ---------------------------------------------------------------------------------------------------------
    def _key(self, path: str) -> str:
        """The object key of driver path ``path`` ("" is the root itself)."""
        p = clean(path)
        if not self._root:
            return p
        return f"{self._root}/{p}" if p else self._root

    def _prefix(self, path: str) -> str:
        """The key prefix of everything under directory ``path``."""
        key = self._key(path)
        return f"{key}/" if key else ""

    # -- reads --------------------------------------------------------------------------------------------------------
    async def stat(self, path: str) -> FileInfo | None:
        p = clean(path)
        if not p:
            return FileInfo("", 0, True, time.time())
        info = await self.s3.head(self._key(p))
        if info is not None:
            return FileInfo(p, info.size, False, info.mtime)
        found, mtime = await self.s3.has_children(self._prefix(p))
        return FileInfo(p, 0, True, mtime or time.time()) if found else None

    async def get(self, path: str) -> bytes:
        p = clean(path)
        if not p:
            raise PathNotFound(path)
        return await self.s3.get_bytes(self._key(p), path)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        key = self._key(path)
        if not clean(path):
            raise PathNotFound(path)
        if length == 0:  # no byte range can say "nothing": just check the object exists
            if await self.s3.head(key) is None:
                raise PathNotFound(path)
            return
        extra = {} if offset == 0 and length is None else {
            "Range": f"bytes={offset}-" + ("" if length is None else str(offset + length - 1))}
        try:
            r = await self.s3.call("get_object", key, Key=key, **extra)
        except Missing:
            raise PathNotFound(path) from None
        except RangeNotSatisfiable:
            return  # offset at or past the end of an existing object
        body = r["Body"]
        try:
            while True:
                chunk = await self.s3.run("read", key, lambda: body.read(CHUNK))
                if not chunk:
                    return
                yield bytes(chunk)
        finally:
            body.close()

    def local_file(self, path: str) -> str | None:
        return None

    async def list(self, path: str) -> list[str]:
        p = clean(path)
        prefix = self._prefix(p)
        keys, dirs = await self.s3.list_level(prefix)
        if not keys and not dirs and p:
            raise PathNotFound(path)
        names = {k[len(prefix):] for k in keys} | {d[len(prefix):].rstrip("/") for d in dirs}
        names.discard("")  # the directory's own marker
        return sorted(names)

    # -- writes -------------------------------------------------------------------------------------------------------
    async def put(self, path: str, data: bytes) -> None:
        p = clean(path)
        if not p:
            raise PathNotFound(path)
        await self.s3.put(self._key(p), data)

    async def writer(self, path: str, append: bool = False) -> Writer:
        p = clean(path)
        if not p:
            raise PathNotFound(path)
        return await S3Writer.open(self.s3, self._key(p), append)

    async def move(self, src: str, dst: str) -> None:
        s, d = clean(src), clean(dst)
        if not s or not d:
            raise PathNotFound(src if not s else dst)
        if s == d:
            if await self.stat(s) is None:
                raise PathNotFound(src)
            return
        skey, dkey = self._key(s), self._key(d)
        if await self.s3.head(skey) is not None:
            await self._copy(skey, dkey)
            await self.s3.delete_keys([skey])
        else:
            objects = await self.s3.list_tree(skey + "/")
            if not objects and not (await self.s3.has_children(skey + "/"))[0]:
                raise PathNotFound(src)
            await self._delete_tree(dkey, must_exist=False)
            for obj in objects:
                await self._copy(obj.key, dkey + obj.key[len(skey):])
            await self._delete_tree(skey, must_exist=False)
        await self._keep_parent(s)

    async def delete(self, path: str) -> None:
        p = clean(path)
        if not p:
            raise PathNotFound(path)
        await self._delete_tree(self._key(p), must_exist=True, path=path)
        await self._keep_parent(p)

    async def _copy(self, src_key: str, dst_key: str) -> None:
        if src_key.endswith("/"):
            await self.s3.put(dst_key, b"")  # a directory marker: nothing to copy
            return
        try:
            await self.s3.copy(src_key, dst_key)
        except Missing:
            raise PathNotFound(src_key) from None

    async def _delete_tree(self, key: str, *, must_exist: bool, path: str = "") -> None:
        """Delete the object ``key`` and everything under ``key/`` (files first, then folder keys)."""
        if await self.s3.head(key) is not None:
            await self.s3.delete_keys([key])  # a file (a path is never both a file and a directory here)
            return
        objects = await self.s3.list_tree(key + "/")
        if must_exist and not objects and not (await self.s3.has_children(key + "/"))[0]:
            raise PathNotFound(path or key)
        files = [o.key for o in objects if not o.key.endswith("/")]
        folders = {key + "/"}
        for o in objects:
            rel = o.key[len(key) + 1:].split("/")[:-1]
            folders.update(key + "/" + "/".join(rel[:i]) + "/" for i in range(1, len(rel) + 1))
        deepest_first = sorted(folders, key=lambda k: (-k.count("/"), k))
        await self.s3.delete_keys(files + deepest_first)

    async def _keep_parent(self, path: str) -> None:
        """Leave ``path``'s parent directory in place (a marker key) now that a child went away."""
        parent = path.rpartition("/")[0]
        if parent:
            await self.s3.put(self._prefix(parent), b"")
