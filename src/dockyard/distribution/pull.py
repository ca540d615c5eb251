"""Pull one image: resolve the reference, download layers into the content store, record the image.

Layers are fetched 3 at a time (Docker's max-concurrent-downloads default) straight into content
store ingests named ``pull-<digest>``; the writer hashes while writing and ``commit`` refuses a
blob whose digest or size differs, so nothing unverified becomes visible. A dropped connection
is retried (5 attempts) with ``Range: bytes=<offset>-`` from what the ingest already holds. The
blobs are held by a lease until the image records exist; then the layers are unpacked (gzip,
zstd or plain: dockyard.images.compression detects them) so `docker run` needs no more work.
Records: the tag (when pulled by tag) and ``<name>@<digest>`` (RepoDigests), the digest being
the one the reference resolved to (a manifest list's own digest, as dockerd records it); the
record's target is the platform manifest and the image ID is the config digest, as in dockerd.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from dockyard.distribution import manifests
from dockyard.distribution.client import (
    Credentials,
    RegistryClient,
    RegistryError,
    error_of,
    not_found,
)
from dockyard.distribution.early_unpack import EarlyUnpack
from dockyard.distribution.endpoints import endpoints_for
from dockyard.distribution.progress import Progress, short
from dockyard.distribution.transfer import CHUNK, RETRYABLE, RunBlocking, all_or_none, retrying
from dockyard.errors import (
    Conflict,
    DockyardError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from dockyard.images.archive.types import LoadedImage, Target
from dockyard.oci.image import Descriptor, Manifest, Platform
from dockyard.oci.reference import Reference
from dockyard.supervisor.images import ID_LABEL, ImageService

MAX_DOWNLOADS = 3


@dataclass(frozen=True)
class PullResult:
    image_id: str
    repo_digest: str       # "sha256:..." the reference resolved to
    up_to_date: bool


@dataclass
class Puller:
    """Pulls into ``images``; store work goes through ``run_blocking`` (the daemon's store thread)."""

    images: ImageService
    run_blocking: RunBlocking
    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    unpack: bool = True
    backoff: float = 1.0
    platform: Platform | None = None  # the manifest list entry to pull (None: this host's)

    async def pull(self, ref: Reference, credentials: Credentials | None, progress: Progress) -> PullResult:
        """Pull ``ref``, reporting on ``progress``; DockyardError (network errors as Unavailable)."""
        try:
            return await self._pull(ref, credentials, progress)
        except manifests.NoMatchingPlatform:
            await progress.status(f"Pulling from {ref.path}", ref.tag or ref.digest)  # in band, as dockerd
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise Unavailable(f"error pulling {ref.familiar()}: {e or type(e).__name__}") from e

    async def _pull(self, ref: Reference, credentials: Credentials | None, progress: Progress) -> PullResult:
        """Mirrors first (docker.io only), then the registry: the first that resolves the reference serves it."""
        candidates = endpoints_for(ref.domain, self.insecure, self.mirrors)
        for i, endpoint in enumerate(candidates):
            client = RegistryClient(endpoint, ref.path, credentials)
            try:
                resolved = await self._resolve(client, ref)
            except (TimeoutError, DockyardError, aiohttp.ClientError, OSError):
                await client.close()
                if i == len(candidates) - 1:
                    raise
                continue
            async with client:
                return await self._pull_from(client, ref, *resolved, progress)
        raise AssertionError("no endpoint")  # endpoints_for always returns the registry itself

    async def _pull_from(self, client: RegistryClient, ref: Reference, top: manifests.Fetched,
                         manifest_doc: manifests.Fetched, progress: Progress) -> PullResult:
        await progress.status(f"Pulling from {ref.path}", ref.tag or ref.digest)
        manifest = manifests.parse_manifest(manifest_doc)
        config_digest = manifest.config.digest
        known = await self.run_blocking(self.images.names_of, config_digest)
        lease = await self.run_blocking(self.images.leases.create, None, 3600.0)
        early: EarlyUnpack | None = None
        try:
            config = await self._config(client, manifest.config)
            if not known and self.unpack:
                early = EarlyUnpack.start(self.images, manifest, config)
            fetched = [] if known else await self._layers(client, manifest, progress, lease.id, early)
            up_to_date = await self.run_blocking(
                self._register, ref, top, manifest_doc, config, config_digest, lease.id)
        finally:
            if early is not None:
                await early.finish()
            await self.run_blocking(self._drop_lease, lease.id)
        if self.unpack:
            await self._unpack(config_digest, progress, fetched)
        await progress.status(f"Digest: {top.digest}")
        status = "Image is up to date" if up_to_date else "Downloaded newer image"
        await progress.status(f"Status: {status} for {ref.familiar()}")
        return PullResult(config_digest, top.digest, up_to_date)

    # -- manifests -----------------------------------------------------------------------------

    async def _resolve(self, client: RegistryClient, ref: Reference) -> tuple[manifests.Fetched, manifests.Fetched]:
        """(what the reference names, the platform manifest), both verified."""
        wanted = ref.digest or ref.tag or "latest"
        try:
            data, ctype = await client.manifest(wanted, manifests.ACCEPT)
        except RegistryError as e:
            raise not_found(ref.familiar(), e) from None
        top = manifests.checked(data, ctype, ref.digest)
        if not top.is_index:
            return top, top
        desc = manifests.select_platform(top, self.platform)
        try:
            data, ctype = await client.manifest(desc.digest, manifests.ACCEPT)
        except RegistryError as e:
            raise not_found(f"{ref.familiar_name()}@{desc.digest}", e) from None
        return top, manifests.checked(data, ctype, desc.digest)

    async def _config(self, client: RegistryClient, desc: Descriptor) -> bytes:
        data = await client.blob_bytes(desc.digest, limit=max(desc.size, 0) + 1)
        got = manifests.digests.from_bytes(data, manifests.digests.algorithm_of(desc.digest))
        if got != desc.digest or len(data) != desc.size:
            raise InvalidArgument(f"image config verification failed for digest {desc.digest}")
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("rootfs"), dict):
            raise InvalidArgument("invalid image config: no rootfs")
        return data

    # -- layers --------------------------------------------------------------------------------

    async def _layers(self, client: RegistryClient, manifest: Manifest, progress: Progress,
                      lease: str, early: EarlyUnpack | None = None) -> list[Descriptor]:
        """Download the missing layers (telling ``early`` of each one present); those downloaded."""
        todo: list[Descriptor] = []
        seen: set[str] = set()
        for layer in manifest.layers:
            if layer.digest in seen:
                continue
            seen.add(layer.digest)
            if await self.run_blocking(self.images.content.exists, layer.digest):
                await progress.status("Already exists", short(layer.digest))
                if early is not None:
                    early.ready(layer.digest)
            else:
                todo.append(layer)
                await progress.status("Pulling fs layer", short(layer.digest))
        limit = asyncio.Semaphore(MAX_DOWNLOADS)
        for layer in todo[MAX_DOWNLOADS:]:
            await progress.status("Waiting", short(layer.digest))
        await all_or_none(self._download(client, layer, progress, limit, lease, early) for layer in todo)
        return todo

    async def _download(self, client: RegistryClient, layer: Descriptor, progress: Progress,
                        limit: asyncio.Semaphore, lease: str, early: EarlyUnpack | None = None) -> None:
        async with limit:
            try:
                await retrying(lambda: self._fetch_layer(client, layer, progress, lease), progress,
                               short(layer.digest), self.backoff)
            except RETRYABLE as e:
                raise DockyardError(f"error pulling layer {layer.digest}: {e}") from e
        if early is not None:
            early.ready(layer.digest)
        await progress.status("Download complete", short(layer.digest))

    async def _fetch_layer(self, client: RegistryClient, layer: Descriptor, progress: Progress,
                           lease: str) -> None:
        """Stream the layer into its ingest from where it stopped; commit verifies digest and size."""
        loop = asyncio.get_running_loop()
        id_ = short(layer.digest)
        writer = await self._open_writer(layer, lease)
        if writer is None:
            return  # another pull committed it meanwhile
        committed = False
        try:
            offset = writer.offset
            if offset < layer.size:
                async with client.blob(layer.digest, offset) as r:
                    if r.status == 200 and offset:
                        await loop.run_in_executor(None, writer.abort)
                        writer = await self._open_writer(layer, lease)  # no Range support: start over
                        if writer is None:
                            return
                    elif r.status not in (200, 206):
                        raise error_of(r.status, await r.read())
                    async for chunk in r.content.iter_chunked(CHUNK):
                        await loop.run_in_executor(None, writer.write, chunk)
                        await progress.bar("Downloading", id_, writer.offset, layer.size)
            await progress.bar("Downloading", id_, writer.offset, layer.size, force=True)
            await progress.status("Verifying Checksum", id_)
            try:
                await loop.run_in_executor(None, functools.partial(writer.commit, size=layer.size))
            except InvalidArgument:
                await loop.run_in_executor(None, writer.abort)
                committed = True
                raise InvalidArgument(f"filesystem layer verification failed for digest {layer.digest}") from None
            committed = True
        finally:
            if not committed:
                await loop.run_in_executor(None, writer.close)  # keep the ingest: the retry resumes it

    async def _open_writer(self, layer: Descriptor, lease: str) -> Any:
        """The ingest writer for the layer (None once the blob exists); waits out a concurrent pull."""
        loop = asyncio.get_running_loop()
        content = self.images.content
        for _ in range(600):
            if content.exists(layer.digest):
                return None
            try:
                return await loop.run_in_executor(None, functools.partial(
                    content.writer, f"pull-{layer.digest}", expected=layer.digest, total=layer.size,
                    lease=lease))
            except Conflict:
                await asyncio.sleep(0.5)
        raise Conflict(f"layer {layer.digest} is being downloaded by another pull")

    # -- records -------------------------------------------------------------------------------

    def _register(self, ref: Reference, top: manifests.Fetched, manifest: manifests.Fetched, config: bytes,
                  config_digest: str, lease: str) -> bool:
        """Store the documents, name the image; True when the tag already named this image."""
        svc = self.images
        for doc in {top.digest: top.data, manifest.digest: manifest.data, config_digest: config}.items():
            svc.content.add(doc[1], expected=doc[0], size=len(doc[1]), lease=lease)
        target = Target(manifest.media_type, manifest.digest, len(manifest.data))
        for layer in json.loads(manifest.data).get("layers") or ():  # every layer must be here now
            if not svc.content.exists(layer["digest"]):
                # the image is here already under other layer blobs (built or committed here, so
                # stored uncompressed): it keeps its own manifest, as dockerd keeps config + layers
                local = [r.target for r in svc.list() if r.labels.get(ID_LABEL) == config_digest]
                if not local:
                    raise NotFound(f"layer {layer['digest']} missing after download")
                target = Target(local[0].media_type, local[0].digest, local[0].size)
                break
        names = ([f"{ref.name}:{ref.tag}"] if ref.tag and not ref.digest else []) + [f"{ref.name}@{top.digest}"]
        up_to_date = all(self._names_image(n, config_digest) for n in names)
        svc._record(LoadedImage(target, config_digest), names)  # the record load/import make
        return up_to_date

    def _names_image(self, name: str, config_digest: str) -> bool:
        try:
            return self.images.metadata.get_image(name).labels.get(ID_LABEL) == config_digest
        except NotFound:
            return False

    def _drop_lease(self, lease_id: str) -> None:
        try:
            self.images.leases.delete(lease_id)
        except NotFound:
            pass

    async def _unpack(self, config_digest: str, progress: Progress, fetched: list[Descriptor]) -> None:
        """Unpack into snapshots (layers already unpacked are skipped by chain ID).

        "Extracting" carries a progress bar, as in dockerd (so a non-terminal CLI leaves it out).
        """
        for layer in fetched:
            await progress.bar("Extracting", short(layer.digest), 0, layer.size, force=True)
        await self.run_blocking(self.images.unpack, config_digest, self.images.default_snapshotter)
        for layer in fetched:
            await progress.bar("Extracting", short(layer.digest), layer.size, layer.size, force=True)
            await progress.status("Pull complete", short(layer.digest))
