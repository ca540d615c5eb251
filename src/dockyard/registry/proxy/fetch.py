"""Single-flight fetches of upstream blobs into storage, streamed to the first reader as they arrive.

One fetch per digest at a time, run as its own task (a reader that goes away does not stop it):
the bytes go to a temporary file under ``_proxy/incoming/`` while being digested, then the file is
moved into ``blobs/`` and linked into the repository only if the digest matches; a mismatch or a
broken transfer stores nothing. The reader that started the fetch gets the bytes as they arrive
(through a small bounded queue: a slow reader slows the fetch instead of filling memory), except
the last chunk, held back until the digest is verified, so a client never receives a complete body
of wrong content. Readers that come while a fetch is in flight wait for it, then read the stored copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from collections.abc import AsyncIterator

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.errors import RegistryError
from dockyard.registry.proxy.upstream import Upstream
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store.blobs import BlobStore

log = logging.getLogger("dockyard.registry.proxy")
INCOMING = "_proxy/incoming"
STALE_INCOMING = 6 * 3600.0  # a temporary file this old belongs to no live fetch (a process killed mid-fetch)
_QUEUE_CHUNKS = 8
_Item = bytes | None | RegistryError  # a chunk, the end, or the failure
_MESSAGES = {"MANIFEST_UNKNOWN": "manifest unknown", "BLOB_UNKNOWN": "blob unknown to registry",
             "NAME_UNKNOWN": "repository name not known to registry"}


class _Listener:
    """The reader that started a fetch: a bounded queue of chunks; leave() unblocks the fetch."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)
        self.closed = False

    async def send(self, item: _Item) -> None:
        if not self.closed:
            await self.queue.put(item)

    def leave(self) -> None:
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                if isinstance(item, RegistryError):
                    raise item
                yield item
        finally:
            self.leave()


class _Fetch:
    """One blob being fetched: its listener (if any), and how it ended."""

    def __init__(self, listener: _Listener | None) -> None:
        self.listener = listener
        self.done = asyncio.Event()
        self.error: RegistryError | None = None
        self.task: asyncio.Task[None] | None = None

    async def send(self, item: _Item) -> None:
        if self.listener is not None:
            await self.listener.send(item)

    async def wait(self) -> None:
        await self.done.wait()
        if self.error is not None:
            raise RegistryError(self.error.code, self.error.message, self.error.status, self.error.detail)


def unavailable(code: str, e: Exception, detail: object) -> RegistryError:
    """A 404 with the spec's ``code`` (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN) whose message
    says why the upstream could not give the content: docker prints "<code>: <message>"."""
    return RegistryError(code, f"{_MESSAGES[code]}: {e}", 404, detail)


class BlobFetches:
    """The in-flight upstream blob fetches of one proxy."""

    def __init__(self, driver: StorageDriver, blobs: BlobStore, upstream: Upstream) -> None:
        self.driver, self.blobs, self.upstream = driver, blobs, upstream
        self._inflight: dict[str, _Fetch] = {}

    def _start(self, repo: str, d: str, listener: _Listener | None) -> _Fetch:
        fetch = _Fetch(listener)
        self._inflight[d] = fetch
        fetch.task = asyncio.get_running_loop().create_task(self._run(repo, d, fetch))
        return fetch

    async def stream(self, repo: str, d: str) -> AsyncIterator[bytes]:
        """The whole blob: live from upstream when this call starts the fetch, else the stored copy
        once the fetch in flight is done."""
        stored = await self.blobs.global_size(d) is not None
        if not stored and d not in self._inflight:  # no await between the check and the start
            listener = _Listener()
            self._start(repo, d, listener)
            async for chunk in listener.chunks():
                yield chunk
            return
        await self.ensure(repo, d)
        async for chunk in self.blobs.reader(repo, d, 0, None):
            yield chunk

    async def ensure(self, repo: str, d: str) -> None:
        """Wait until ``d`` is stored and linked into ``repo`` (fetching it if no one is)."""
        stored = await self.blobs.global_size(d) is not None
        fetch = self._inflight.get(d)
        if fetch is None and not stored:
            fetch = self._start(repo, d, None)
        if fetch is not None:
            await fetch.wait()
        if not await self.blobs.is_linked(repo, d):
            await self.blobs.link(repo, d)  # fetched for another repository; upstream has it in this one too

    async def _run(self, repo: str, d: str, fetch: _Fetch) -> None:
        tmp = f"{INCOMING}/{uuidlib.uuid4().hex}"
        try:
            await self._copy(repo, d, tmp, fetch)
            await self.blobs.commit(tmp, d)
            await self.blobs.link(repo, d)
            log.info("cached blob %s of %s", d, repo)
        except Exception as e:  # noqa: BLE001  (upstream gone or refusing, digest mismatch, storage failure)
            fetch.error = e if isinstance(e, RegistryError) else unavailable("BLOB_UNKNOWN", e, {"digest": d})
            log.warning("blob %s of %s not cached: %s", d, repo, e)
            await self._discard(tmp)
        except BaseException:  # cancelled (close())
            fetch.error = errors.blob_unknown({"digest": d, "reason": "fetch cancelled"})
            await self._discard(tmp)
            raise
        finally:
            self._inflight.pop(d, None)
            fetch.done.set()
            with contextlib.suppress(Exception):
                await fetch.send(fetch.error)

    async def _copy(self, repo: str, d: str, tmp: str, fetch: _Fetch) -> None:
        """Upstream -> ``tmp``, digesting; every chunk but the last goes to the listener at once."""
        digester = digests.Digester(digests.algorithm_of(d))
        held: bytes | None = None
        w = await self.driver.writer(tmp)
        try:
            async with contextlib.aclosing(self.upstream.blob(repo, d)) as chunks:
                async for chunk in chunks:
                    await w.write(chunk)
                    digester.update(chunk)
                    if held is not None:
                        await fetch.send(held)
                    held = chunk
        finally:
            await w.close()
        actual = digester.digest()
        if actual != d:
            raise RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: upstream sent content with digest "
                                f"{actual}", 404, {"digest": d, "actual": actual})
        if held is not None:
            await fetch.send(held)

    async def _discard(self, tmp: str) -> None:
        with contextlib.suppress(PathNotFound, OSError):
            await self.driver.delete(tmp)

    async def close(self) -> None:
        """Cancel the fetches in flight (their temporary files are removed)."""
        tasks = [f.task for f in self._inflight.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def purge_incoming(driver: StorageDriver, older_than: float = STALE_INCOMING) -> list[str]:
    """Remove temporary fetch files older than ``older_than`` seconds (left by a killed process);
    younger ones may belong to a fetch of another process on the same storage. Returns those removed."""
    try:
        names = await driver.list(INCOMING)
    except PathNotFound:
        return []
    removed: list[str] = []
    limit = time.time() - older_than
    for name in names:
        path = f"{INCOMING}/{name}"
        info = await driver.stat(path)
        if info is not None and not info.is_dir and info.mtime < limit:
            with contextlib.suppress(PathNotFound):
                await driver.delete(path)
                removed.append(path)
    if removed:
        log.info("removed %d stale proxy fetch file(s)", len(removed))
    return removed
