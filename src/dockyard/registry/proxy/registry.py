"""ProxyRegistry: the Registry facade as a pull-through cache that still accepts pushes elsewhere.

Each repository is in one of three states, kept on storage so they survive restarts:
  new      nothing stored under repositories/<name>/: pulls go upstream;
  proxied  holds cached upstream content (marker file ``_proxied``, written before the first cached
           byte): pulls are served from the cache, misses go upstream; pushes and deletes -> 405
           UNSUPPORTED;
  local    a client pushed to it first (marker ``_local``), or it held content before proxy mode
           was turned on: a plain registry repository, never looked up upstream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.errors import RegistryError
from dockyard.registry.proxy.fetch import BlobFetches, unavailable
from dockyard.registry.proxy.settings import ProxySettings
from dockyard.registry.proxy.upstream import Upstream, UpstreamDown, UpstreamMissing
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import manifests, paths
from dockyard.registry.store.registry import Registry

log = logging.getLogger("dockyard.registry.proxy")
NEW, PROXIED, LOCAL = "new", "proxied", "local"
_MARKERS = {PROXIED: "_proxied", LOCAL: "_local"}
_CONFIRMED_MAX = 4096


class ResponseAborted(asyncio.CancelledError):
    """A blob response whose headers are sent cannot be completed: aiohttp closes the connection on a
    cancellation (the server's error middleware would turn an Exception into a second response
    written into the body, and the client would wait for the missing bytes)."""


def marker(repo: str, state: str) -> str:
    """The marker file of a proxied or local repository."""
    return f"{paths.repo_dir(repo)}/{_MARKERS[state]}"


class ProxyRegistry(Registry):
    """A Registry whose non-local repositories mirror ``settings.remoteurl`` (see the module doc)."""

    def __init__(self, driver: StorageDriver, settings: ProxySettings, *, upstream: Upstream | None = None,
                 **options: Any) -> None:
        super().__init__(driver, **options)
        self.settings = settings
        self.upstream = upstream if upstream is not None else Upstream(settings)
        self._fetches = BlobFetches(driver, self._blobs, self.upstream)
        self._states: dict[str, str] = {}
        self._state_lock = asyncio.Lock()
        self._confirmed: dict[tuple[str, str], int] = {}  # (repo, digest) -> size upstream's HEAD gave

    async def close(self) -> None:
        """Cancel fetches in flight and close the upstream connections (the app's on_cleanup)."""
        await self._fetches.close()
        await self.upstream.close()

    # --- repository states -----------------------------------------------

    async def state(self, repo: str) -> str:
        """NEW, PROXIED or LOCAL (see the module doc)."""
        known = self._states.get(repo)
        if known is not None:
            return known
        try:
            children = await self.driver.list(paths.repo_dir(repo))
        except PathNotFound:
            return NEW
        if _MARKERS[PROXIED] in children:
            found = PROXIED
        elif any(c.startswith("_") for c in children):
            found = LOCAL
        else:
            return NEW  # only nested repositories below this name
        self._states[repo] = found
        return found

    async def _claim(self, repo: str, wanted: str) -> str:
        """Make a NEW repository ``wanted`` (writing its marker); the state it ends up in."""
        async with self._state_lock:
            current = await self.state(repo)
            if current == NEW:
                await self.driver.put(marker(repo, wanted), self.settings.remoteurl.encode()
                                      if wanted == PROXIED else b"pushed\n")
                self._states[repo] = current = wanted
            return current

    async def _for_push(self, repo: str) -> None:
        paths.check_name(repo)
        if await self._claim(repo, LOCAL) == PROXIED:
            raise self._refused(repo)

    def _refused(self, repo: str) -> RegistryError:
        return RegistryError(
            "UNSUPPORTED", f"repository {repo} is a pull-through cache of {self.settings.remoteurl}: it "
            "cannot be pushed to or deleted from; push to a repository that is not cached", 405,
            {"name": repo, "remoteurl": self.settings.remoteurl})

    async def _is_local(self, repo: str) -> bool:
        return await self.state(repo) == LOCAL

    # --- pushes and deletes ----------------------------------------------

    async def start_upload(self, repo: str) -> str:
        await self._for_push(repo)
        return await super().start_upload(repo)

    async def mount_blob(self, repo: str, digest: str, from_repo: str | None) -> bool:
        self._blob_args(repo, digest)
        await self._for_push(repo)
        return await super().mount_blob(repo, digest, from_repo)

    async def put_manifest(self, repo: str, ref: str, data: bytes, content_type: str) -> tuple[str, str | None]:
        await self._for_push(repo)
        return await super().put_manifest(repo, ref, data, content_type)

    async def delete_manifest(self, repo: str, ref: str) -> None:
        paths.check_name(repo)
        if await self.state(repo) == PROXIED:
            raise self._refused(repo)
        await super().delete_manifest(repo, ref)

    async def delete_blob(self, repo: str, digest: str) -> None:
        self._blob_args(repo, digest)
        if await self.state(repo) == PROXIED:
            raise self._refused(repo)
        await super().delete_blob(repo, digest)

    # --- blobs -----------------------------------------------------------

    async def _cached_size(self, repo: str, digest: str) -> int | None:
        if await self._blobs.is_linked(repo, digest):
            return await self._blobs.global_size(digest)
        return None

    async def _upstream_size(self, repo: str, digest: str) -> int:
        """The blob's size upstream (remembered for the GET that usually follows); BLOB_UNKNOWN."""
        try:
            size = await self.upstream.blob_size(repo, digest)
        except UpstreamMissing:
            raise errors.blob_unknown({"digest": digest}) from None
        except UpstreamDown as e:
            log.warning("%s", e)
            raise unavailable("BLOB_UNKNOWN", e, {"digest": digest}) from None
        if len(self._confirmed) >= _CONFIRMED_MAX:
            self._confirmed.clear()
        self._confirmed[(repo, digest)] = size
        return size

    async def blob_size(self, repo: str, digest: str) -> int:
        self._blob_args(repo, digest)
        if await self._is_local(repo):
            return await super().blob_size(repo, digest)
        cached = await self._cached_size(repo, digest)
        if cached is not None:
            return cached
        size = await self._upstream_size(repo, digest)
        if await self.state(repo) == PROXIED and await self._blobs.global_size(digest) == size:
            await self._blobs.link(repo, digest)  # stored for another repository: no need to fetch it again
        return size

    async def blob_file(self, repo: str, digest: str) -> str | None:
        self._blob_args(repo, digest)
        if await self._is_local(repo) or await self._cached_size(repo, digest) is not None:
            return await super().blob_file(repo, digest)
        return None  # not cached yet: blob_reader streams it from upstream

    def blob_reader(self, repo: str, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        self._blob_args(repo, digest)
        return self._read_or_abort(repo, digest, offset, length)

    async def _read_or_abort(self, repo: str, digest: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        """The server reads a blob after sending its headers: a failure now (upstream gone mid-transfer,
        a digest mismatch) must cut the connection, or the client waits for the rest of the body."""
        try:
            async for chunk in self._read_blob(repo, digest, offset, length):
                yield chunk
        except RegistryError as e:
            log.warning("blob %s of %s: %s: closing the connection", digest, repo, e)
            raise ResponseAborted(str(e)) from e

    async def _read_blob(self, repo: str, digest: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        if await self._is_local(repo) or await self._cached_size(repo, digest) is not None:
            async for chunk in self._blobs.reader(repo, digest, offset, length):
                yield chunk
            return
        size = self._confirmed.pop((repo, digest), None)
        if size is None:
            size = await self._upstream_size(repo, digest)
            self._confirmed.pop((repo, digest), None)
        if await self._claim(repo, PROXIED) != PROXIED:
            raise errors.blob_unknown({"digest": digest})
        if offset == 0 and (length is None or length >= size):
            async for chunk in self._fetches.stream(repo, digest):
                yield chunk
            return
        await self._fetches.ensure(repo, digest)  # a range of a blob not cached: fetch it whole first
        async for chunk in self._blobs.reader(repo, digest, offset, length):
            yield chunk

    # --- manifests and tags ----------------------------------------------

    async def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        paths.check_name(repo)
        if await self._is_local(repo):
            return await super().get_manifest(repo, ref)
        if paths.is_digest_ref(ref):
            d = paths.check_digest(ref)
            if await self._manifests.exists(repo, d):
                return await super().get_manifest(repo, ref)
            return await self._fetch_manifest(repo, ref)
        tag = paths.check_tag(ref)
        cached = await self._tag_age(repo, tag)
        if cached is None:
            return await self._fetch_manifest(repo, tag)
        d, age = cached
        if self.settings.ttl == 0 or age < self.settings.ttl:
            return await super().get_manifest(repo, tag)
        return await self._revalidate(repo, tag, d)

    async def _tag_age(self, repo: str, tag: str) -> tuple[str, float] | None:
        """(digest, seconds since it was cached or last confirmed upstream) of a cached tag."""
        info = await self.driver.stat(paths.tag_link(repo, tag))
        if info is None or info.is_dir:
            return None
        try:
            d = await self._tags.resolve(repo, tag)
        except RegistryError:
            return None
        return d, max(0.0, time.time() - info.mtime)

    async def _revalidate(self, repo: str, tag: str, d: str) -> tuple[bytes, str, str]:
        """A cached tag past its ttl: HEAD upstream; same digest -> refresh, new -> fetch, down -> cached."""
        try:
            current = await self.upstream.manifest_digest(repo, tag)
        except UpstreamMissing:
            log.info("tag %s:%s is gone upstream: untagged", repo, tag)
            await self._tags.delete(repo, tag)
            raise errors.manifest_unknown({"tag": tag}) from None
        except UpstreamDown as e:
            log.warning("%s; serving the cached %s:%s", e, repo, tag)
            return await super().get_manifest(repo, tag)
        if current == d:
            await self._tags.set(repo, tag, d)  # confirmed: the ttl starts again
            return await super().get_manifest(repo, tag)
        try:
            return await self._fetch_manifest(repo, tag)
        except RegistryError:
            return await super().get_manifest(repo, tag)

    async def _fetch_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """GET the manifest upstream, check its digest, cache it byte for byte (and its tag)."""
        try:
            data, content_type = await self.upstream.manifest(repo, ref)
        except UpstreamMissing:
            raise errors.manifest_unknown({"name": repo, "reference": ref}) from None
        except UpstreamDown as e:
            log.warning("%s", e)
            raise unavailable("MANIFEST_UNKNOWN", e, {"name": repo, "reference": ref}) from None
        by_digest = paths.is_digest_ref(ref)
        d = digests.from_bytes(data, digests.algorithm_of(ref) if by_digest else "sha256")
        if by_digest and d != ref:
            raise unavailable("MANIFEST_UNKNOWN", UpstreamDown(f"upstream sent a manifest whose digest is {d}"),
                              {"digest": ref, "actual": d})
        try:
            parsed = manifests.parse(data, "")
        except RegistryError:
            log.warning("manifest %s:%s from upstream (%s) is not cached: not a supported type", repo, ref,
                        content_type)
            return data, content_type or "application/octet-stream", d
        if await self._claim(repo, PROXIED) == PROXIED:
            await self._store_manifest(repo, None if by_digest else ref, data, d, parsed)
        return data, parsed.media_type, d

    async def _store_manifest(self, repo: str, tag: str | None, data: bytes, d: str, parsed: manifests.Parsed) -> None:
        """Revision (and tag) as the upstream has them; its blobs are fetched when they are pulled."""
        await self._blobs.put(d, data)
        await self.driver.put(paths.revision_link(repo, d), d.encode())
        if parsed.subject is not None:
            await self.driver.put(paths.referrer_entry(repo, parsed.subject, d), d.encode())
        if tag is not None:
            await self._tags.set(repo, tag, d)
        log.info("cached manifest %s of %s%s", d, repo, f" (tag {tag})" if tag else "")

    async def tags(self, repo: str) -> list[str]:
        """Upstream's tags for a repository that is not local; the cached ones when it is down."""
        paths.check_name(repo)
        state = await self.state(repo)
        if state == LOCAL:
            return await super().tags(repo)
        try:
            return await self.upstream.tags(repo)
        except UpstreamMissing:
            if state == PROXIED:
                return await super().tags(repo)
            raise errors.name_unknown({"name": repo}) from None
        except UpstreamDown as e:
            log.warning("%s", e)
            if state == PROXIED:
                return await super().tags(repo)
            raise unavailable("NAME_UNKNOWN", e, {"name": repo}) from None
