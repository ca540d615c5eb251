"""Manifests: parsing and validation, storage by digest, reference checks and the referrers index.

Accepted: Docker schema 2 manifests and manifest lists, OCI image manifests
and indexes (FEATURES.md §3.5).  The bytes are stored exactly as received, as
a blob, and linked into the repository as a revision.  A manifest without a
``mediaType`` field (allowed by OCI) gets its type from its shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import paths
from dockyard.registry.store.blobs import BlobStore

SUPPORTED = frozenset({mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST})


@dataclass
class Parsed:
    """What the store needs from a manifest: its type, references, subject and referrer fields."""

    media_type: str
    blobs: list[str] = field(default_factory=list)       # config and layers that must exist
    children: list[str] = field(default_factory=list)    # manifests an index names
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


def _descriptor(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise errors.manifest_invalid({"reason": f"{where}: descriptor is not an object"})
    if not isinstance(obj.get("mediaType"), str):
        raise errors.manifest_invalid({"reason": f"{where}: mediaType missing"})
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.manifest_invalid({"reason": f"{where}: invalid size"})
    if not isinstance(obj.get("digest"), str) or not digests.is_valid(obj["digest"]):
        raise errors.manifest_invalid({"reason": f"{where}: invalid digest {obj.get('digest')!r}"})
    return obj


def _descriptors(doc: dict[str, Any], key: str, required: bool) -> list[dict[str, Any]]:
    items = doc.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise errors.manifest_invalid({"reason": f"{key} must be a list"})
    return [_descriptor(x, f"{key}[{i}]") for i, x in enumerate(items)]


def _shape_type(doc: dict[str, Any]) -> str:
    """The OCI type a manifest without ``mediaType`` has by its shape."""
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    raise errors.manifest_invalid({"reason": "mediaType missing and neither config nor manifests present"})


def media_type_of(doc: dict[str, Any]) -> str:
    """The manifest's media type: its ``mediaType`` field, else its shape."""
    declared = doc.get("mediaType")
    if declared is None:
        return _shape_type(doc)
    if declared not in SUPPORTED:
        raise errors.manifest_invalid({"reason": f"unsupported manifest media type {declared!r}"})
    return str(declared)


def load(data: bytes) -> dict[str, Any]:
    """The manifest as a JSON object; MANIFEST_INVALID if it is not one."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.manifest_invalid({"reason": f"invalid JSON: {e}"}) from None
    if not isinstance(doc, dict):
        raise errors.manifest_invalid({"reason": "manifest is not a JSON object"})
    return doc


def parse(data: bytes, content_type: str) -> Parsed:
    """Validate a manifest PUT body; the Content-Type must match its mediaType (MANIFEST_INVALID)."""
    doc = load(data)
    if doc.get("schemaVersion") != 2:
        raise errors.manifest_invalid({"reason": "schemaVersion must be 2"})
    media_type = media_type_of(doc)
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype and "mediaType" in doc and ctype != media_type:
        raise errors.manifest_invalid({"reason": f"Content-Type {ctype!r} does not match mediaType {media_type!r}"})
    if ctype in SUPPORTED and ctype != media_type:
        raise errors.manifest_invalid({"reason": f"Content-Type {ctype!r} does not match the manifest"})
    parsed = Parsed(media_type)
    if mt.is_index(media_type):
        parsed.children = [x["digest"] for x in _descriptors(doc, "manifests", True)]
    else:
        config = _descriptor(doc.get("config"), "config")
        layers = _descriptors(doc, "layers", media_type == mt.DOCKER_MANIFEST)
        parsed.blobs = [config["digest"]] + [x["digest"] for x in layers if not _foreign(x)]
        parsed.artifact_type = doc.get("artifactType") or config["mediaType"]
    if doc.get("subject") is not None:
        parsed.subject = _descriptor(doc["subject"], "subject")["digest"]
    if parsed.artifact_type is None and isinstance(doc.get("artifactType"), str):
        parsed.artifact_type = doc["artifactType"]
    if isinstance(doc.get("annotations"), dict):
        parsed.annotations = doc["annotations"]
    return parsed


def _foreign(layer: dict[str, Any]) -> bool:
    """Non-distributable layers with URLs are fetched elsewhere: they need not be in the registry."""
    return layer["mediaType"] in mt.NONDISTRIBUTABLE and bool(layer.get("urls"))


class ManifestStore:
    """Manifest revisions of repositories and the referrers index."""

    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs

    async def exists(self, repo: str, d: str) -> bool:
        return await self.driver.stat(paths.revision_link(repo, d)) is not None

    async def get(self, repo: str, d: str) -> tuple[bytes, str]:
        """(bytes, media type) of revision ``d``; MANIFEST_UNKNOWN if ``repo`` does not have it."""
        if not await self.exists(repo, d):
            raise errors.manifest_unknown({"digest": d})
        try:
            data = await self.blobs.get(d)
        except errors.RegistryError:
            raise errors.manifest_unknown({"digest": d}) from None
        return data, media_type_of(load(data))

    async def put(self, repo: str, data: bytes, content_type: str, d: str) -> Parsed:
        """Validate, check references, store ``data`` as revision ``d`` and index its subject.

        GC-safe order (store/gc.py): references must be linked in ``repo``; then the
        revision link is written, every reference re-linked (fresh mtimes) and only
        then is their data verified, so a concurrent sweep either sees a fresh link
        and keeps the blob, or this PUT sees the blob gone, rolls back and fails with
        MANIFEST_BLOB_UNKNOWN.
        """
        parsed = parse(data, content_type)
        await self._check_linked(repo, parsed)
        existed = await self.exists(repo, d)
        await self.blobs.put(d, data)
        await self.driver.put(paths.revision_link(repo, d), d.encode())
        try:
            await self._relink(repo, parsed)
            await self._verify(repo, parsed)
        except errors.RegistryError:
            if not existed:
                await self._drop_revision(repo, d)
            raise
        if await self.blobs.global_size(d) is None:  # swept between blobs.put and the revision link
            await self.driver.put(paths.blob_data(d), data)
        if parsed.subject is not None:
            await self.driver.put(paths.referrer_entry(repo, parsed.subject, d), d.encode())
        return parsed

    async def _check_linked(self, repo: str, parsed: Parsed) -> None:
        for b in parsed.blobs:
            if not await self.blobs.is_linked(repo, b) or await self.blobs.global_size(b) is None:
                raise errors.manifest_blob_unknown({"digest": b})
        for child in parsed.children:
            if not await self.exists(repo, child):
                raise errors.manifest_blob_unknown({"digest": child})

    async def _relink(self, repo: str, parsed: Parsed) -> None:
        """Rewrite the links of every reference: their mtimes now tell GC they are in use."""
        for b in parsed.blobs:
            await self.blobs.link(repo, b)
        for child in parsed.children:
            await self.driver.put(paths.revision_link(repo, child), child.encode())

    async def _verify(self, repo: str, parsed: Parsed) -> None:
        """Every referenced blob's data (and child manifest) still exists after the re-link."""
        for b in [*parsed.blobs, *parsed.children]:
            if await self.blobs.global_size(b) is None:
                raise errors.manifest_blob_unknown({"digest": b})
        for child in parsed.children:
            if not await self.exists(repo, child):
                raise errors.manifest_blob_unknown({"digest": child})

    async def _drop_revision(self, repo: str, d: str) -> None:
        try:
            await self.driver.delete(paths.revision_dir(repo, d))
        except PathNotFound:
            pass

    async def delete(self, repo: str, d: str) -> None:
        """Remove revision ``d`` and its referrers entry; MANIFEST_UNKNOWN if absent."""
        data, _ = await self.get(repo, d)
        try:
            await self.driver.delete(paths.revision_dir(repo, d))
        except PathNotFound:
            raise errors.manifest_unknown({"digest": d}) from None
        subject = _subject_of(data)
        if subject is not None:
            try:
                await self.driver.delete(paths.referrer_entry(repo, subject, d))
            except PathNotFound:
                pass

    async def referrers(self, repo: str, subject: str, artifact_type: str | None) -> dict[str, Any]:
        """An OCI index of the manifests in ``repo`` whose subject is ``subject``."""
        try:
            names = await self.driver.list(paths.referrers_dir(repo, subject))
        except PathNotFound:
            names = []
        found = []
        for name in names:
            desc = await self._referrer(repo, f"{paths.referrers_dir(repo, subject)}/{name}")
            if desc is not None and (artifact_type is None or desc.get("artifactType") == artifact_type):
                found.append(desc)
        found.sort(key=lambda x: x["digest"])
        return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found}

    async def _referrer(self, repo: str, entry: str) -> dict[str, Any] | None:
        try:
            d = (await self.driver.get(entry)).decode()
            data, media_type = await self.get(repo, d)
            parsed = parse(data, "")
        except (PathNotFound, errors.RegistryError):
            return None  # deleted meanwhile, or unreadable: not a referrer any more
        desc: dict[str, Any] = {"mediaType": media_type, "digest": d, "size": len(data)}
        if parsed.artifact_type is not None:
            desc["artifactType"] = parsed.artifact_type
        if parsed.annotations:
            desc["annotations"] = parsed.annotations
        return desc


def _subject_of(data: bytes) -> str | None:
    try:
        subject = load(data).get("subject")
    except errors.RegistryError:
        return None
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str) and digests.is_valid(subject["digest"]):
        return str(subject["digest"])
    return None
