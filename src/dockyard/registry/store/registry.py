"""Registry: the facade the HTTP server calls, validating names, tags and digests on the way in.

Every method raises RegistryError with the spec's code (errors.py) and
nothing else on purpose.  Names are checked first (NAME_INVALID), then
references (TAG_INVALID / DIGEST_INVALID).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import paths
from dockyard.registry.store.blobs import BlobStore
from dockyard.registry.store.immutable import ImmutableRules
from dockyard.registry.store.manifests import ManifestStore
from dockyard.registry.store.tags import TagStore
from dockyard.registry.store.uploads import UploadStore

_REPO_MARKERS = ("_layers", "_manifests", "_uploads")


class Registry:
    """Repositories, blobs, uploads, manifests, tags and referrers over one storage driver."""

    def __init__(self, driver: StorageDriver, *, delete_enabled: bool = True,
                 immutable: ImmutableRules | None = None) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled
        self.immutable = immutable if immutable else None
        self._tag_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._blobs = BlobStore(driver)
        self._uploads = UploadStore(driver, self._blobs)
        self._manifests = ManifestStore(driver, self._blobs)
        self._tags = TagStore(driver)

    # --- names and blobs -------------------------------------------------

    async def check_name(self, name: str) -> None:
        paths.check_name(name)

    def _blob_args(self, repo: str, digest: str) -> None:
        paths.check_name(repo)
        paths.check_digest(digest)

    async def blob_size(self, repo: str, digest: str) -> int:
        self._blob_args(repo, digest)
        return await self._blobs.size(repo, digest)

    async def blob_file(self, repo: str, digest: str) -> str | None:
        self._blob_args(repo, digest)
        return await self._blobs.local_file(repo, digest)

    def blob_reader(self, repo: str, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Validation errors raise here; BLOB_UNKNOWN raises on the first iteration."""
        self._blob_args(repo, digest)
        return self._blobs.reader(repo, digest, offset, length)

    async def delete_blob(self, repo: str, digest: str) -> None:
        self._blob_args(repo, digest)
        if not self.delete_enabled:
            raise errors.unsupported()
        await self._blobs.unlink(repo, digest)

    async def mount_blob(self, repo: str, digest: str, from_repo: str | None) -> bool:
        """Link ``digest`` from ``from_repo`` into ``repo``; False means "upload it instead"."""
        self._blob_args(repo, digest)
        if await self._blobs.is_linked(repo, digest) and await self._blobs.global_size(digest) is not None:
            return True
        if from_repo is None:
            return False
        paths.check_name(from_repo)
        if not await self._blobs.is_linked(from_repo, digest) or await self._blobs.global_size(digest) is None:
            return False
        await self._blobs.link(repo, digest)
        # a GC sweep may have taken the data just before the link: then upload it instead
        return await self._blobs.global_size(digest) is not None

    # --- uploads ---------------------------------------------------------

    async def start_upload(self, repo: str) -> str:
        paths.check_name(repo)
        return await self._uploads.start(repo)

    async def upload_offset(self, repo: str, uuid: str) -> int:
        paths.check_name(repo)
        return await self._uploads.offset(repo, uuid)

    async def append_upload(self, repo: str, uuid: str, chunks: AsyncIterator[bytes], start: int | None) -> int:
        paths.check_name(repo)
        return await self._uploads.append(repo, uuid, chunks, start)

    async def finish_upload(self, repo: str, uuid: str, digest: str, chunks: AsyncIterator[bytes] | None) -> None:
        paths.check_name(repo)
        await self._uploads.finish(repo, uuid, digest, chunks)

    async def cancel_upload(self, repo: str, uuid: str) -> None:
        paths.check_name(repo)
        await self._uploads.cancel(repo, uuid)

    # --- manifests and tags ----------------------------------------------

    async def _resolve(self, repo: str, ref: str) -> str:
        paths.check_name(repo)
        if paths.is_digest_ref(ref):
            return paths.check_digest(ref)
        return await self._tags.resolve(repo, paths.check_tag(ref))

    async def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        d = await self._resolve(repo, ref)
        data, media_type = await self._manifests.get(repo, d)
        return data, media_type, d

    async def put_manifest(self, repo: str, ref: str, data: bytes, content_type: str) -> tuple[str, str | None]:
        """Store ``data`` byte for byte; a digest ``ref`` must match it (DIGEST_INVALID)."""
        paths.check_name(repo)
        if paths.is_digest_ref(ref):
            d = digests.from_bytes(data, digests.algorithm_of(paths.check_digest(ref)))
            if d != ref:
                raise errors.digest_invalid({"digest": ref, "actual": d})
            tag = None
        else:
            tag = paths.check_tag(ref)
            d = digests.from_bytes(data)
        if tag is None:
            parsed = await self._manifests.put(repo, data, content_type, d)
            return d, parsed.subject
        async with self._tag_lock(repo, tag):
            if self.immutable is not None:
                self.immutable.check_push(repo, tag, await self._current(repo, tag), d)
            parsed = await self._manifests.put(repo, data, content_type, d)
            await self._tags.set(repo, tag, d)
            if not await self._manifests.exists(repo, d):
                await self._restore_tagged(repo, tag, data, content_type, d)
        return d, parsed.subject

    async def _restore_tagged(self, repo: str, tag: str, data: bytes, content_type: str, d: str) -> None:
        """A GC removed the revision as untagged before the tag landed: store it again, or untag."""
        try:
            await self._manifests.put(repo, data, content_type, d)
        except errors.RegistryError:
            if await self._current(repo, tag) == d:
                await self._tags.delete(repo, tag)
            raise

    def _tag_lock(self, repo: str, tag: str) -> asyncio.Lock:
        """Serialises PUTs of one tag in this process (immutability is check-then-set)."""
        if self.immutable is None or not self.immutable.is_immutable(repo, tag):
            return asyncio.Lock()
        return self._tag_locks.setdefault((repo, tag), asyncio.Lock())

    async def _current(self, repo: str, tag: str) -> str | None:
        try:
            return await self._tags.resolve(repo, tag)
        except errors.RegistryError:
            return None

    async def delete_manifest(self, repo: str, ref: str) -> None:
        """By tag: untag only.  By digest: remove the revision and every tag pointing to it.

        DENIED when an immutable tag would go (the tag itself, or one pointing to the digest).
        """
        paths.check_name(repo)
        if not self.delete_enabled:
            raise errors.unsupported()
        if not paths.is_digest_ref(ref):
            tag = paths.check_tag(ref)
            if self.immutable is not None and await self._current(repo, tag) is not None:
                self.immutable.check_delete(repo, [tag])
            await self._tags.delete(repo, tag)
            return
        d = paths.check_digest(ref)
        pointing = await self._tags.pointing_to(repo, d)
        if self.immutable is not None:
            self.immutable.check_delete(repo, pointing)
        await self._manifests.delete(repo, d)
        for tag in pointing:
            await self._tags.delete(repo, tag)

    async def tags(self, repo: str) -> list[str]:
        paths.check_name(repo)
        if await self.driver.stat(paths.repo_dir(repo)) is None:
            raise errors.name_unknown({"name": repo})
        return await self._tags.all(repo)

    async def catalog(self) -> list[str]:
        """Every repository (a directory holding _layers, _manifests or _uploads), sorted."""
        found: list[str] = []
        await self._walk(paths.REPOSITORIES, "", found)
        return sorted(found)

    async def _walk(self, path: str, name: str, found: list[str]) -> None:
        try:
            children = await self.driver.list(path)
        except PathNotFound:
            return
        if name and any(c in _REPO_MARKERS for c in children):
            found.append(name)
        for child in children:
            if not child.startswith("_"):
                await self._walk(f"{path}/{child}", f"{name}/{child}" if name else child, found)

    async def referrers(self, repo: str, digest: str, artifact_type: str | None) -> dict[str, Any]:
        paths.check_name(repo)
        return await self._manifests.referrers(repo, paths.check_digest(digest), artifact_type)
