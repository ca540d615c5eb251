"""The OCI image layout (image-spec layout.md), as a tar or as a directory.

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 an OCI index; each entry a manifest (or index) descriptor with
                               annotations org.opencontainers.image.ref.name (the tag, as containerd
                               and Docker 25 write it) and io.containerd.image.name (the full name)
    blobs/<alg>/<hex>          every manifest, config and layer, named by digest

Reading: blobs were verified against their names while ingesting; here every blob the index
reaches must be present (a missing one is an error naming it), except manifests of other platforms
under a nested index, which single-platform exports leave out. Names come from
io.containerd.image.name, else from ref.name when it is a full reference, else ``base_name:ref.name``.
Writing: a stored Docker schema2 manifest is written as the equivalent OCI manifest (same config
bytes, so the same image ID; same layer blobs with OCI media types), which skopeo and containerd
expect in an ``oci:`` layout.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.images.archive import layerblob
from dockyard.images.archive.contents import ArchiveContents
from dockyard.images.archive.tarwriter import ArchiveSink
from dockyard.images.archive.types import BlobStore, ImageToSave, LoadedImage, Target, dumps, read_json
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference

REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"
LAYOUT = {"imageLayoutVersion": "1.0.0"}


def read(contents: ArchiveContents, store: BlobStore, *, base_name: str | None = None) -> list[LoadedImage]:
    """Check and name every image listed in index.json."""
    if contents.has("oci-layout"):
        layout = json.loads(contents.read("oci-layout", store))
        if layout.get("imageLayoutVersion") != "1.0.0":
            raise InvalidArgument(f"oci-layout: unsupported version {layout.get('imageLayoutVersion')!r}")
    index = json.loads(contents.read("index.json", store))
    images = []
    for desc in index.get("manifests") or []:
        target = Target(desc["mediaType"], desc["digest"], int(desc["size"]))
        config = _check(store, target, nested=False)
        images.append(LoadedImage(target, config, _names(desc.get("annotations") or {}, base_name)))
    return images


def _names(annotations: dict[str, str], base_name: str | None) -> tuple[str, ...]:
    if IMAGE_NAME in annotations:
        return (annotations[IMAGE_NAME],)
    ref = annotations.get(REF_NAME)
    if not ref:
        return ()
    if "/" in ref or ":" in ref:
        try:
            return (str(reference.parse(ref)),)
        except DockyardError:
            pass
    if base_name:
        return (f"{base_name}:{ref}",)
    return ()


def _missing(digest: str) -> InvalidArgument:
    return InvalidArgument(f"blob {digest} is named but missing from the archive", id=digest)


def _check(store: BlobStore, target: Target, *, nested: bool) -> str:
    """Verify the blobs under ``target``; return the config digest of its first present manifest."""
    if not store.exists(target.digest):
        raise _missing(target.digest)
    doc = read_json(store, target.digest)
    if mt.is_index(target.media_type):
        configs = [_check(store, _target(d), nested=True) for d in doc.get("manifests") or []
                   if store.exists(d["digest"])]  # other platforms may be left out
        configs = [c for c in configs if c]
        if not configs:
            raise InvalidArgument(f"index {target.digest}: none of its manifests is in the archive",
                                  id=target.digest)
        return configs[0]
    if not mt.is_manifest(target.media_type):
        if nested:
            return ""  # attestations and other artifacts: not images
        raise InvalidArgument(f"{target.digest}: unsupported media type {target.media_type}", id=target.digest)
    for d in [doc["config"], *(doc.get("layers") or [])]:
        if not store.exists(d["digest"]):
            raise _missing(d["digest"])
    return str(doc["config"]["digest"])


def _target(desc: dict[str, Any]) -> Target:
    return Target(desc["mediaType"], desc["digest"], int(desc["size"]))


def as_oci_manifest(store: BlobStore, manifest: Target) -> tuple[bytes, dict[str, Any]]:
    """The manifest's bytes in OCI form (unchanged when it is one already) and its parsed JSON."""
    with store.open(manifest.digest) as f:
        raw = f.read()
    doc = json.loads(raw)
    if manifest.media_type == mt.OCI_MANIFEST:
        return raw, doc
    if manifest.media_type != mt.DOCKER_MANIFEST:
        raise InvalidArgument(f"{manifest.digest}: not an image manifest ({manifest.media_type})",
                              id=manifest.digest)
    converted = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {**doc["config"], "mediaType": mt.OCI_CONFIG},
                 "layers": [{**layer, "mediaType": layerblob.oci_media_type(layer["mediaType"])}
                            for layer in doc.get("layers") or []]}
    return dumps(converted), converted


def write(images: list[ImageToSave], store: BlobStore, sink: ArchiveSink) -> None:
    """Write ``images`` as one OCI layout: every blob once, one index.json entry per name."""
    written: set[str] = set()
    entries: list[dict[str, Any]] = []
    sink.add_bytes("oci-layout", dumps(LAYOUT))
    for image in images:
        raw, doc = as_oci_manifest(store, image.manifest)
        for d in [doc["config"], *(doc.get("layers") or [])]:
            _write_blob(sink, store, d["digest"], written)
        desc = _write_raw(sink, raw, written)
        for name in image.names or ("",):
            annotations = dict(image.annotations)
            if name:
                ref = reference.parse(name)
                annotations[IMAGE_NAME] = str(ref)
                if ref.tag:
                    annotations[REF_NAME] = ref.tag
            entries.append({"mediaType": mt.OCI_MANIFEST, **desc, **({"annotations": annotations}
                                                                     if annotations else {})})
    sink.add_bytes("index.json", dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}))


def _blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/", 1)


def _write_blob(sink: ArchiveSink, store: BlobStore, digest: str, written: set[str]) -> None:
    if digest in written:
        return
    try:
        f = store.open(digest)
    except NotFound as e:
        raise NotFound(f"blob {digest} is not in the content store", id=digest) from e
    with f:
        size = f.seek(0, 2)
        f.seek(0)
        sink.add_file(_blob_name(digest), f, size)
    written.add(digest)


def _write_raw(sink: ArchiveSink, raw: bytes, written: set[str]) -> dict[str, Any]:
    d = digests.from_bytes(raw)
    if d not in written:
        sink.add_bytes(_blob_name(d), raw)
        written.add(d)
    return {"digest": d, "size": len(raw)}
