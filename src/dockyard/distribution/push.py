"""Push local images to a registry, the way dockerd does (distribution/push_v2.go's behaviour).

Per tag: every layer (top first, id = short diff ID) reports "Preparing"; up to 5 upload at once
(dockerd's max-concurrent-uploads default), the others "Waiting". A layer is skipped when the
registry already has it in the target repository ("Layer already exists"), mounted when another
repository of the same registry holds it ("Mounted from <path>"), else streamed in one chunked
PATCH and committed with PUT ?digest= ("Pushing" with progressDetail, then "Pushed"). Then the
config blob (when missing) and the manifest under the tag: "<tag>: digest: <d> size: <n>" plus the
aux {"Tag", "Digest", "Size"}, and the image gains the RepoDigest ``<name>@<d>``.

Manifest bytes: an image whose layers are all compressed (a pulled one) is pushed with the exact
manifest it was pulled with, so its digest stays the same. An image with uncompressed layers (a
load, import or commit) gets a schema2 manifest with gzip layers, formatted like distribution's
(3-space indented JSON); the compressed digest of each layer is remembered per diff ID
(blobsources.py), so the next push finds it with one HEAD.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from dockyard.distribution.blobsources import BlobSource, BlobSources
from dockyard.distribution.client import Credentials, RegistryClient, RegistryError
from dockyard.distribution.endpoints import endpoint_for
from dockyard.distribution.progress import Progress, short
from dockyard.distribution.transfer import CHUNK, RunBlocking, all_or_none, retrying
from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.images.archive.types import LoadedImage, Target
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.reference import Reference
from dockyard.supervisor.images import ID_LABEL, ImageService, ResolvedImage

MAX_UPLOADS = 5
MAX_MOUNTS = 3


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str
    size: int


@dataclass
class _Layer:
    """One layer to push: the local blob, its diff ID, and (once known) the remote descriptor."""

    diff_id: str
    local: Target
    remote: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return short(self.diff_id)

    @property
    def compressed(self) -> bool:
        return mt.layer_compression(self.local.media_type) != ""


def manifest_bytes(config: dict[str, Any], layers: list[dict[str, Any]]) -> bytes:
    """A schema2 manifest as distribution marshals it (field order, 3-space indent, no newline)."""
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
           "config": {"mediaType": mt.DOCKER_CONFIG, "size": config["size"], "digest": config["digest"]},
           "layers": [{"mediaType": x["mediaType"], "size": x["size"], "digest": x["digest"]} for x in layers]}
    return json.dumps(doc, indent=3).encode()


def remote_media_type(local: str) -> str:
    """The media type a pushed layer gets in a rebuilt schema2 manifest."""
    if mt.layer_compression(local) == "gzip" or not mt.layer_compression(local):
        return mt.DOCKER_LAYER_GZIP
    return local


@dataclass
class Pusher:
    """Pushes from ``images``; blocking store work goes through ``run_blocking``."""

    images: ImageService
    run_blocking: RunBlocking
    insecure: tuple[str, ...] = ()
    backoff: float = 5.0
    sources: BlobSources = field(init=False)

    def __post_init__(self) -> None:
        self.sources = BlobSources(os.path.join(self.images.root, "distribution", "blob-sources.json"))

    # -- what to push --------------------------------------------------------------------------

    def tags_of(self, ref: Reference) -> list[Reference]:
        """The tags to push: ``ref`` itself, or every tag of its repository (dockerd's messages otherwise)."""
        records = [r.name for r in self.images.list()]
        mine = [reference.parse(n, default_tag=False) for n in records
                if n.startswith((ref.name + ":", ref.name + "@"))]
        mine = [r for r in mine if r.name == ref.name]
        if not mine:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}",
                           id=ref.familiar_name())
        if ref.tag:
            if not any(r.tag == ref.tag and not r.digest for r in mine):
                raise NotFound(f"tag does not exist: {ref.familiar()}", id=ref.familiar())
            return [ref]
        tags = sorted({r.tag for r in mine if r.tag and not r.digest})
        if not tags:
            raise NotFound(f"no tags to push for {ref.familiar_name()}", id=ref.familiar_name())
        return [ref.with_tag(t) for t in tags]

    # -- push ----------------------------------------------------------------------------------

    async def push(self, ref: Reference, credentials: Credentials | None, progress: Progress) -> list[PushResult]:
        """Push ``ref`` (one tag, or all tags when it has none); DockyardError for every failure."""
        await progress.status(f"The push refers to repository [{ref.name}]")
        tags = await self.run_blocking(self.tags_of, ref)
        client = RegistryClient(endpoint_for(ref.domain, self.insecure), ref.path, credentials)
        client.actions = "pull,push"
        remote: dict[str, dict[str, Any]] = {}
        results = []
        try:
            async with client:
                for tagged in tags:
                    results.append(await self._push_tag(client, tagged, remote, progress))
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise Unavailable(str(e) or type(e).__name__) from e
        return results

    async def _push_tag(self, client: RegistryClient, ref: Reference, remote: dict[str, dict[str, Any]],
                        progress: Progress) -> PushResult:
        image: ResolvedImage = await self.run_blocking(self.images.resolve, str(ref))
        layers = [_Layer(d, t) for t, d in zip(image.layers, image.diff_ids)]
        await self._upload_layers(client, ref, layers, remote, progress)
        config = {"digest": image.config_digest, "size": len(await self.run_blocking(
            self.images.content.read, image.config_digest))}
        await self._put_config(client, image.config_digest)
        if all(layer.compressed for layer in layers) and mt.is_manifest(image.manifest.media_type):
            data = await self.run_blocking(self.images.content.read, image.manifest.digest)
            media_type = image.manifest.media_type
        else:
            data = manifest_bytes(config, [layer.remote or {} for layer in layers])
            media_type = mt.DOCKER_MANIFEST
        assert ref.tag is not None
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        await client.put_manifest(ref.tag, data, media_type)
        await progress.status(f"{ref.tag}: digest: {digest} size: {len(data)}")
        await progress.emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(data)}})
        await self.run_blocking(self._record_digest, ref, digest)
        return PushResult(ref.tag, digest, len(data))

    def _record_digest(self, ref: Reference, digest: str) -> None:
        """``name@digest`` names the pushed image (its RepoDigest), as dockerd's addDigestReference."""
        record = self.images.metadata.get_image(str(ref))
        target = Target(record.target.media_type, record.target.digest, record.target.size)
        self.images._record(LoadedImage(target, record.labels.get(ID_LABEL, "")), [f"{ref.name}@{digest}"])

    async def _put_config(self, client: RegistryClient, digest: str) -> None:
        if await client.blob_size(digest) is not None:
            return
        data = await self.run_blocking(self.images.content.read, digest)
        _, location = await client.start_upload()
        await client.finish_upload(location, digest, data)

    # -- layers --------------------------------------------------------------------------------

    async def _upload_layers(self, client: RegistryClient, ref: Reference, layers: list[_Layer],
                             remote: dict[str, dict[str, Any]], progress: Progress) -> None:
        todo: dict[str, _Layer] = {}
        for layer in reversed(layers):  # top layer first, as dockerd lists them
            await progress.status("Preparing", layer.id)
            todo.setdefault(layer.diff_id, layer)
        limit = asyncio.Semaphore(MAX_UPLOADS)
        for layer in list(todo.values())[MAX_UPLOADS:]:
            await progress.status("Waiting", layer.id)
        await all_or_none(self._with_retries(client, ref, layer, remote, progress, limit) for layer in todo.values())
        for layer in layers:
            layer.remote = remote[layer.diff_id]

    async def _with_retries(self, client: RegistryClient, ref: Reference, layer: _Layer,
                            remote: dict[str, dict[str, Any]], progress: Progress, limit: asyncio.Semaphore) -> None:
        async with limit:
            remote[layer.diff_id] = await retrying(lambda: self._upload(client, ref, layer, remote, progress),
                                                   progress, layer.id, self.backoff)

    async def _upload(self, client: RegistryClient, ref: Reference, layer: _Layer,
                      remote: dict[str, dict[str, Any]], progress: Progress) -> dict[str, Any]:
        """The layer's descriptor in the target repository, uploading only when it is not there."""
        if layer.diff_id in remote:
            await progress.status("Layer already exists", layer.id)
            return remote[layer.diff_id]
        known = await self.run_blocking(self.sources.get, layer.diff_id)
        mine = [s.digest for s in reversed(known) if s.repository == ref.name]
        checks = [layer.local.digest] if layer.compressed else mine[:1]
        for digest in checks:
            size = await client.blob_size(digest)
            if size is not None:
                await progress.status("Layer already exists", layer.id)
                return await self._done(ref, layer, digest, size)
        location = ""
        for source in await self.run_blocking(self._mount_candidates, ref, layer, known):
            path = source.repository.split("/", 1)[1]
            mounted, location = await client.start_upload(source.digest, path)
            if mounted:
                await progress.status(f"Mounted from {path}", layer.id)
                size = await client.blob_size(source.digest)
                return await self._done(ref, layer, source.digest, size or 0)
        if not location:
            _, location = await client.start_upload()
        digest, size = await self._send(client, location, layer, progress)
        await progress.status("Pushed", layer.id)
        return await self._done(ref, layer, digest, size)

    async def _done(self, ref: Reference, layer: _Layer, digest: str, size: int) -> dict[str, Any]:
        await self.run_blocking(self.sources.add, layer.diff_id, BlobSource(digest, ref.name))
        return {"mediaType": remote_media_type(layer.local.media_type), "size": size, "digest": digest}

    def _mount_candidates(self, ref: Reference, layer: _Layer, known: list[BlobSource]) -> list[BlobSource]:
        """Other repositories of the same registry known to hold the layer, most similar path first."""
        found = [s for s in reversed(known) if s.repository != ref.name
                 and s.repository.split("/", 1)[0] == ref.domain]
        if layer.compressed:  # a pulled layer is in the repositories the image was pulled from
            for record in self.images.metadata.images_by_digest(self.images.get(str(ref)).target.digest):
                src = reference.parse(record.name, default_tag=False)
                if src.domain == ref.domain and src.name != ref.name:
                    found.append(BlobSource(layer.local.digest, src.name))
        parts = ref.path.split("/")

        def likeness(s: BlobSource) -> int:
            theirs = s.repository.split("/", 1)[1].split("/")
            n = 0
            while n < min(len(parts), len(theirs)) and parts[n] == theirs[n]:
                n += 1
            return n

        unique = list({(s.digest, s.repository): s for s in found}.values())
        return sorted(unique, key=likeness, reverse=True)[:MAX_MOUNTS]

    async def _send(self, client: RegistryClient, location: str, layer: _Layer,
                    progress: Progress) -> tuple[str, int]:
        """Stream the layer (gzip-compressed when stored uncompressed) in one PATCH; PUT its digest."""
        box: dict[str, Any] = {}
        try:
            location = await client.patch_upload(location, self._body(layer, progress, box))
            await client.finish_upload(location, box["digest"])
        except RegistryError:
            await client.cancel_upload(location)
            raise
        return str(box["digest"]), int(box["size"])

    async def _body(self, layer: _Layer, progress: Progress, box: dict[str, Any]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        f = await loop.run_in_executor(None, self.images.content.open, layer.local.digest)
        gz = None if layer.compressed else zlib.compressobj(6, zlib.DEFLATED, 31)
        h, sent, read = hashlib.sha256(), 0, 0
        try:
            while chunk := await loop.run_in_executor(None, f.read, CHUNK):
                read += len(chunk)
                out = chunk if gz is None else await loop.run_in_executor(None, gz.compress, chunk)
                await progress.bar("Pushing", layer.id, read, layer.local.size)
                if out:
                    h.update(out)
                    sent += len(out)
                    yield out
            tail = gz.flush() if gz is not None else b""
            if tail:
                h.update(tail)
                sent += len(tail)
                yield tail
            await progress.bar("Pushing", layer.id, read, layer.local.size, force=True)
        finally:
            f.close()
        box["digest"], box["size"] = "sha256:" + h.hexdigest(), sent


def parse_push_ref(name: str, tag: str) -> Reference:
    """``name`` (+ ``tag``) as dockerd's push route reads them: a digest cannot be pushed."""
    try:
        ref = reference.parse(name, default_tag=False)
        if tag:
            ref = ref.with_tag(tag)
    except InvalidArgument:
        raise InvalidArgument("invalid reference format") from None
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    return ref
