"""Docker's `docker save` format (as dockerd 20.10 writes and reads it).

    manifest.json              [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                                 "Layers": ["<dir>/layer.tar", ...]}, ...]   one entry per image
    repositories               {"busybox": {"latest": "<top layer dir>"}}   (legacy, still written)
    <hex>.json                 the image config; image ID = sha256 of these exact bytes
    <dir>/layer.tar            uncompressed layer tar (a symlink to another dir's when shared)
    <dir>/VERSION, <dir>/json  legacy v1 metadata ("1.0"; id/parent), ignored when loading

Newer Docker (25+) names layers ``blobs/sha256/<hex>`` and adds an OCI index.json; ``read``
handles both since it only follows manifest.json. Loading stores layers exactly as found (usually
uncompressed, so the layer digest equals the diff ID), the config verbatim, and a Docker schema2
manifest made for the image, which is what containerd does for ``ctr import``. Diff IDs are
checked against the config's rootfs before anything is named. The pre-1.10 format without
manifest.json is not supported.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.errors import InvalidArgument, NotFound
from dockyard.images.archive import layerblob
from dockyard.images.archive.contents import ArchiveContents
from dockyard.images.archive.tarwriter import ArchiveSink
from dockyard.images.archive.types import BlobStore, ImageToSave, LoadedImage, Target, dumps, read_json
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import chain_ids
from dockyard.oci import reference


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"archive entry {what!r}: invalid JSON: {e}", path=what) from e


def read(contents: ArchiveContents, store: BlobStore) -> list[LoadedImage]:
    """Store every image named by manifest.json; return them in the archive's order."""
    entries = _json(contents.read("manifest.json", store), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("archive entry 'manifest.json': expected a list", path="manifest.json")
    return [_read_entry(contents, store, e) for e in entries]


def _read_entry(contents: ArchiveContents, store: BlobStore, entry: dict[str, Any]) -> LoadedImage:
    config_name = entry.get("Config", "")
    try:
        config_raw = contents.read(config_name, store)
    except NotFound as e:
        raise InvalidArgument(f"manifest.json names a missing config {config_name!r}", path=config_name) from e
    config = _json(config_raw, config_name)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    names = list(entry.get("Layers") or [])
    if len(names) != len(diff_ids):
        raise InvalidArgument(f"{config_name}: {len(names)} layers in manifest.json but {len(diff_ids)} "
                              "diff_ids in the config", path=config_name)
    layers = [_read_layer(contents, store, n, d) for n, d in zip(names, diff_ids)]
    config_digest = store.add(config_raw, size=len(config_raw))
    manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config_raw), "digest": config_digest},
                "layers": layers}
    raw = dumps(manifest)
    target = Target(mt.DOCKER_MANIFEST, store.add(raw, size=len(raw)), len(raw))
    return LoadedImage(target, config_digest, tuple(entry.get("RepoTags") or ()))


def _read_layer(contents: ArchiveContents, store: BlobStore, name: str, expected_diff_id: str) -> dict[str, Any]:
    try:
        blob = contents.blob(name, store)
    except NotFound as e:
        raise InvalidArgument(f"manifest.json names a missing layer {name!r}", path=name) from e
    compression = layerblob.sniff(store, blob.digest)
    got = layerblob.diff_id(store, blob.digest)
    if got != expected_diff_id:
        raise InvalidArgument(f"layer {name!r}: diff ID {got} does not match the config's {expected_diff_id}",
                              path=name)
    return {"mediaType": layerblob.docker_media_type(compression), "size": blob.size, "digest": blob.digest}


def write(images: list[ImageToSave], store: BlobStore, sink: ArchiveSink) -> None:
    """Write ``images`` as one `docker save` archive (shared layers written once)."""
    written: dict[str, str] = {}  # diff ID -> dir holding its layer.tar
    dirs: set[str] = set()
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        doc = read_json(store, image.manifest.digest)
        config_digest = doc["config"]["digest"]
        with store.open(config_digest) as f:
            config_raw = f.read()
        config = json.loads(config_raw)
        diff_ids = list(config["rootfs"]["diff_ids"])
        layers = doc.get("layers") or []
        if len(layers) != len(diff_ids):
            raise InvalidArgument(f"image {config_digest}: manifest and config disagree on layers",
                                  id=config_digest)
        layer_names: list[str] = []
        parent = ""
        for layer, diff, chain in zip(layers, diff_ids, chain_ids(diff_ids)):
            dirname = chain.split(":", 1)[1]
            if dirname not in dirs:
                _write_layer_dir(sink, store, dirname, parent, layer["digest"], diff, written)
                dirs.add(dirname)
            layer_names.append(f"{dirname}/layer.tar")
            parent = dirname
        config_name = config_digest.split(":", 1)[1] + ".json"
        sink.add_bytes(config_name, config_raw)
        tags = [reference.parse(n).familiar() for n in image.names]
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
    sink.add_bytes("manifest.json", dumps(manifest))
    sink.add_bytes("repositories", dumps(repositories))


def _write_layer_dir(sink: ArchiveSink, store: BlobStore, dirname: str, parent: str, blob: str, diff: str,
                     written: dict[str, str]) -> None:
    v1: dict[str, Any] = {"id": dirname, "created": "1970-01-01T00:00:00Z"}
    if parent:
        v1["parent"] = parent
    sink.add_bytes(f"{dirname}/VERSION", b"1.0")
    sink.add_bytes(f"{dirname}/json", dumps(v1))
    if diff in written:
        sink.add_symlink(f"{dirname}/layer.tar", f"../{written[diff]}/layer.tar")
        return
    f, size = layerblob.uncompressed_copy(store, blob)
    with f:
        sink.add_file(f"{dirname}/layer.tar", f, size)
    written[diff] = dirname
