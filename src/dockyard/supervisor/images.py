"""The image service: names -> manifests in the content store -> unpacked snapshots.

It ties the content store, the metadata database (image records, leases) and the snapshotters
together, the way containerd's image service and unpacker do:

- ``load`` streams an archive (`docker save` or OCI layout, tar or directory) into the content
  store under a lease, then writes one image record per name in a transaction; a crash before
  that leaves only leased or unreferenced blobs, which GC removes. Untagged images are recorded
  under their image ID ("sha256:<hex>"), so GC keeps them and ``get`` finds them.
- ``unpack`` applies the layers into snapshots, each committed under its chain ID, so identical
  layer stacks are unpacked once, and labels the config blob with
  ``containerd.io/gc.ref.snapshot.<snapshotter>=<top chain ID>`` so GC keeps the snapshots.
- Records carry the image ID (the config digest, as Docker computes it) in the label
  ``dockyard.image.id``, so references by ID or ID prefix resolve without reading blobs.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.images.archive import (ArchiveContents, ImageToSave, LoadedImage, Target, ingest_dir, ingest_tar,
                                     read_archive)
from dockyard.images.archive import docker as docker_archive
from dockyard.images.archive import oci_layout
from dockyard.images.archive.rootfs import import_rootfs
from dockyard.images.archive.tarwriter import ArchiveSink, DirSink, TarSink
from dockyard.images.unpack import LayerSource, unpack_layers
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.image import Descriptor, Index, match_platform
from dockyard.supervisor.content.store import ContentStore
from dockyard.supervisor.gc import GCResult, collect
from dockyard.supervisor.leases import LeaseManager
from dockyard.supervisor.metadata import ImageRecord, Metadata
from dockyard.supervisor.snapshots import BaseSnapshotter, open_snapshotter

ID_LABEL = "dockyard.image.id"
SNAPSHOT_GC_LABEL = "containerd.io/gc.ref.snapshot."
ArchiveFormat = Literal["docker", "oci"]


@dataclass(frozen=True)
class ResolvedImage:
    """An image record resolved to one platform manifest, with its config."""

    record: ImageRecord
    manifest: Target
    layers: tuple[Target, ...]
    config_digest: str
    diff_ids: tuple[str, ...]


class _LeasedStore:
    """The content store as archives see it, every added blob held by ``lease_id``."""

    def __init__(self, content: ContentStore, lease_id: str) -> None:
        self.content, self.lease_id = content, lease_id

    def add(self, data: bytes | BinaryIO, *, expected: str | None = None, size: int | None = None) -> str:
        return self.content.add(data, expected=expected, size=size, lease=self.lease_id)

    def open(self, digest: str) -> BinaryIO:
        return self.content.open(digest)

    def info(self, digest: str) -> Any:
        return self.content.info(digest)

    def exists(self, digest: str) -> bool:
        return self.content.exists(digest)


def is_image_id(ref: str) -> bool:
    """"sha256:<hex prefix>", or 12 to 64 lowercase hex characters (an ID or ID prefix, as docker takes them)."""
    hexpart = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
    minimum = 1 if ref.startswith("sha256:") else 12
    return minimum <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)


class ImageService:
    """Images of one supervisor root (see dockyard.supervisor for the layout)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.metadata = Metadata(os.path.join(self.root, "metadata.db"))
        self.content = ContentStore(self.root, self.metadata)
        self.leases = LeaseManager(self.metadata)
        self._snapshotters: dict[str, BaseSnapshotter] = {}
        self.default_snapshotter = "overlayfs"  # the one an engine unpacks into (its storage driver)

    def close(self) -> None:
        for sn in self._snapshotters.values():
            sn.close()
        self.content.close()
        self.metadata.close()

    def __enter__(self) -> ImageService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- names -----------------------------------------------------------------------------------

    def list(self) -> builtins.list[ImageRecord]:
        return self.metadata.list_images()

    def get(self, ref: str) -> ImageRecord:
        """The record for a name ("busybox" = docker.io/library/busybox:latest), an ID or ID prefix."""
        if ref.startswith("sha256:") and len(ref) == 71:
            try:
                return self.metadata.get_image(ref)
            except NotFound:
                pass
        if not is_image_id(ref):
            try:
                return self.metadata.get_image(reference.normalize(ref))
            except NotFound:
                raise NotFound(f"No such image: {ref}", id=ref) from None
        matches = self._by_id(ref)
        if not matches:
            raise NotFound(f"No such image: {ref}", id=ref)
        return matches[0]

    def _by_id(self, ref: str) -> builtins.list[ImageRecord]:
        prefix = ref if ref.startswith("sha256:") else "sha256:" + ref
        found = [r for r in self.list() if r.labels.get(ID_LABEL, "").startswith(prefix)]
        if len({r.labels[ID_LABEL] for r in found}) > 1:
            raise Conflict(f"image ID prefix {ref!r} is ambiguous", id=ref)
        return found

    def names_of(self, image_id: str) -> builtins.list[str]:
        """Every name recorded for the image ID (including the ID itself for untagged images)."""
        return [r.name for r in self.list() if r.labels.get(ID_LABEL) == image_id]

    def tag(self, src: str, dst: str) -> str:
        """Name the image ``src`` also ``dst``; returns the full new name."""
        record = self.get(src)
        name = reference.normalize(dst)
        with self.metadata.transaction():
            self._keep_reachable_by_id(name)
            self.metadata.put_image(name, record.target, record.labels)
            self._drop_id_record(record.labels.get(ID_LABEL, ""))
        return name

    def _keep_reachable_by_id(self, name: str) -> None:
        """Before ``name`` moves: if it is its image's last name, record the image under its ID."""
        try:
            old = self.metadata.get_image(name)
        except NotFound:
            return
        image_id = old.labels.get(ID_LABEL, "")
        if image_id and self.names_of(image_id) == [name]:
            self.metadata.put_image(image_id, old.target, old.labels)

    def remove(self, ref: str, *, force: bool = False) -> builtins.list[str]:
        """Untag a name, or by ID every name (Conflict when several unless ``force``); returns them."""
        record = self.get(ref)
        if is_image_id(ref) and not ref.startswith(record.name):
            names = self.names_of(record.labels.get(ID_LABEL, ""))
            if len(names) > 1 and not force:
                raise Conflict(f"image {ref} is referenced by several names: {', '.join(names)} (use force)",
                               id=ref)
        else:
            names = [record.name]
        with self.metadata.transaction():
            for name in names:
                self.metadata.delete_image(name)
        return names

    def _drop_id_record(self, image_id: str) -> None:
        if image_id:
            try:
                self.metadata.delete_image(image_id)
            except NotFound:
                pass

    def _record(self, loaded: LoadedImage, names: builtins.list[str]) -> None:
        desc = Descriptor(loaded.target.media_type, loaded.target.digest, loaded.target.size)
        labels = {ID_LABEL: loaded.config_digest}
        with self.metadata.transaction():
            if not names and self.names_of(loaded.config_digest):
                return  # already known (by name or ID): an untagged load adds nothing
            for name in names:
                self._keep_reachable_by_id(name)
            for name in names or [loaded.config_digest]:
                self.metadata.put_image(name, desc, labels)
            if names:
                self._drop_id_record(loaded.config_digest)

    # -- archives --------------------------------------------------------------------------------

    def load(self, source: BinaryIO | str, *, base_name: str | None = None) -> builtins.list[str]:
        """Load a `docker save` tar or an OCI layout (tar stream, or directory path).

        Returns what was loaded, in archive order: full names ("docker.io/library/busybox:latest"),
        or the image ID ("sha256:...") of an image without one; see ``load_messages``.
        """
        with self.leases.lease() as lease:
            store = _LeasedStore(self.content, lease.id)
            contents = ingest_dir(source, store) if isinstance(source, str) else ingest_tar(source, store)
            images = self._read(contents, store, base_name)  # every image checked before any is named
            loaded: builtins.list[str] = []
            with self.metadata.transaction():
                for image in images:
                    names = [reference.normalize(n) for n in image.names]
                    self._record(image, names)
                    loaded += names or [image.config_digest]
        return loaded

    def _read(self, contents: ArchiveContents, store: _LeasedStore, base_name: str | None) -> builtins.list[LoadedImage]:
        if base_name and not contents.has("manifest.json") and contents.has("index.json"):
            return oci_layout.read(contents, store, base_name=reference.parse(base_name, default_tag=False).name)
        return read_archive(contents, store)

    def save(self, refs: builtins.list[str], out: BinaryIO | str, *, format: ArchiveFormat = "docker") -> None:
        """Write the images to ``out`` (a stream: a tar; a path: an OCI layout directory)."""
        if not refs:
            raise InvalidArgument("save needs at least one image")
        images: dict[str, ImageToSave] = {}
        for ref in refs:
            resolved = self.resolve(ref)
            name = () if is_image_id(ref) or resolved.record.name.startswith("sha256:") else (resolved.record.name,)
            key = resolved.manifest.digest
            prev = images.get(key)
            names = tuple(dict.fromkeys((prev.names if prev else ()) + name))
            images[key] = ImageToSave(resolved.manifest, names)
        sink: ArchiveSink = DirSink(out) if isinstance(out, str) else TarSink(out)
        writer: Callable[[builtins.list[ImageToSave], Any, ArchiveSink], None] = \
            docker_archive.write if format == "docker" else oci_layout.write
        writer(list(images.values()), self.content, sink)
        sink.close()

    def import_rootfs(self, stream: BinaryIO, ref: str | None, changes: builtins.list[str] | None = None,
                      *, comment: str = "Imported from -") -> str:
        """`docker import`: the tarball as a one-layer image named ``ref``; returns the image ID."""
        with self.leases.lease() as lease:
            loaded = import_rootfs(stream, _LeasedStore(self.content, lease.id), changes=changes, comment=comment)
            self._record(loaded, [reference.normalize(ref)] if ref else [])
        return loaded.config_digest

    def commit(self, key: str, ref: str | None, *, base: str | None = None, snapshotter: str = "overlayfs",
               changes: builtins.list[str] | None = None, comment: str = "", author: str = "",
               config: dict[str, Any] | None = None, container_id: str = "") -> str:
        """`docker commit`: the active snapshot ``key``'s changes as a new layer on ``base``.

        The layer is stored uncompressed (its digest is its diff ID, as for loaded images); the
        config is the base's with the layer, a history entry and the ``changes`` applied; the
        manifest keeps the base's media type family. Returns the new image ID.
        """
        import tempfile

        from dockyard.images.archive.changes import apply_changes
        from dockyard.images.archive.types import dumps
        from dockyard.images.diff import write_snapshot_layer
        from dockyard.oci.image import host_platform

        sn = self.snapshotter(snapshotter)
        resolved = self.resolve(base) if base else None
        oci = resolved is not None and resolved.manifest.media_type == mt.OCI_MANIFEST
        with self.leases.lease() as lease, tempfile.TemporaryFile(dir=self.root) as tmp:
            diff_id = write_snapshot_layer(sn, key, tmp)
            size = tmp.tell()
            tmp.seek(0)
            layer = self.content.add(tmp, expected=diff_id, size=size, lease=lease.id)
            container_config = config
            if resolved is not None:
                config = json.loads(self.content.read(resolved.config_digest))
                layers = [{"mediaType": x.media_type, "size": x.size, "digest": x.digest} for x in resolved.layers]
            else:
                host = host_platform()
                config = {"architecture": host.architecture, "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
                layers = []
            now = _utc_now()
            base_config = dict(config.get("config") or {}) if container_config is None else dict(container_config)
            config["config"] = apply_changes(base_config, changes or [])
            if container_id:
                config["container"] = container_id
            config["rootfs"] = {"type": "layers", "diff_ids": [*config["rootfs"]["diff_ids"], diff_id]}
            entry = {"created": now, **({"author": author} if author else {}), **({"comment": comment} if comment else {})}
            config["history"] = [*(config.get("history") or []), entry]
            config["created"] = now
            if resolved is not None:  # like dockerd's committed images: the base is the parent
                config["parent"] = resolved.config_digest
            else:
                config.pop("parent", None)
            for field_name, value in (("author", author), ("comment", comment)):
                if value:
                    config[field_name] = value
                else:
                    config.pop(field_name, None)
            config_raw = dumps(config)
            config_digest = self.content.add(config_raw, size=len(config_raw), lease=lease.id)
            layers.append({"mediaType": mt.OCI_LAYER if oci else mt.DOCKER_LAYER, "size": size, "digest": layer})
            manifest_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
            manifest = dumps({"schemaVersion": 2, "mediaType": manifest_type,
                              "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                                         "size": len(config_raw), "digest": config_digest},
                              "layers": layers})
            target = Target(manifest_type, self.content.add(manifest, size=len(manifest), lease=lease.id),
                            len(manifest))
            self._record(LoadedImage(target, config_digest), [reference.normalize(ref)] if ref else [])
        return config_digest

    # -- manifests -------------------------------------------------------------------------------

    def resolve(self, ref: str) -> ResolvedImage:
        """The record and its manifest for this host's platform, with layers and diff IDs."""
        record = self.get(ref)
        target = Target(record.target.media_type, record.target.digest, record.target.size)
        if mt.is_index(target.media_type):
            desc = match_platform(Index.from_bytes(self.content.read(target.digest), target.media_type))
            target = Target(desc.media_type, desc.digest, desc.size)
        doc = json.loads(self.content.read(target.digest))
        config_digest = doc["config"]["digest"]
        config = json.loads(self.content.read(config_digest))
        diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or ())
        layers = tuple(Target(d["mediaType"], d["digest"], int(d["size"])) for d in doc.get("layers") or ())
        if len(layers) != len(diff_ids):
            raise InvalidArgument(f"image {ref}: {len(layers)} layers but {len(diff_ids)} diff IDs", id=ref)
        return ResolvedImage(record, target, layers, config_digest, diff_ids)

    # -- snapshots -------------------------------------------------------------------------------

    def snapshotter(self, name: str = "overlayfs") -> BaseSnapshotter:
        """The snapshotter ``name`` ("overlayfs" or "native") of this root, opened once."""
        if name not in self._snapshotters:
            self._snapshotters[name] = open_snapshotter(name, os.path.join(self.root, "snapshots", name))
        return self._snapshotters[name]

    def unpack(self, ref: str, snapshotter: str = "overlayfs") -> str:
        """Apply the image's layers into committed snapshots named by chain ID; return the top one.

        dockyard.images.unpack does the work: chain IDs already committed are skipped (identical
        layer stacks are unpacked once), overlay layers are applied concurrently. GC keeps the
        snapshots of a named image (its config's chain IDs); the config blob is also labelled with
        the top snapshot, containerd's way.
        """
        image = self.resolve(ref)
        sn = self.snapshotter(snapshotter)
        sources = [LayerSource(diff_id, functools.partial(self.content.open, layer.digest), layer.digest)
                   for layer, diff_id in zip(image.layers, image.diff_ids)]
        top = unpack_layers(sn, sources)
        if top:
            labels = {**self.content.info(image.config_digest).labels, SNAPSHOT_GC_LABEL + snapshotter: top}
            self.content.set_labels(image.config_digest, labels)
        return top

    def export(self, key: str, out: BinaryIO, snapshotter: str = "overlayfs") -> None:
        """`docker export`: the filesystem of the snapshot ``key`` (mounted if need be) as a tar."""
        from dockyard.images.archive.export import export_tree
        from dockyard.supervisor.snapshots import Mount, mount_all, unmount_all

        mounts: builtins.list[Mount] = self.snapshotter(snapshotter).mounts(key)
        if len(mounts) == 1 and mounts[0].type == "bind":
            export_tree(mounts[0].source, out)
            return
        target = os.path.join(self.root, "tmpmounts", uuid.uuid4().hex)
        os.makedirs(target)
        try:
            mount_all(mounts, target)
            try:
                export_tree(target, out)
            finally:
                unmount_all(target)
        finally:
            os.rmdir(target)

    def gc(self) -> GCResult:
        """Remove what no image, lease or snapshot needs (dockyard.supervisor.gc)."""
        return collect(self.content, snapshotters=dict(self._all_snapshotters()))

    def _all_snapshotters(self) -> builtins.list[tuple[str, BaseSnapshotter]]:
        base = os.path.join(self.root, "snapshots")
        names = sorted(os.listdir(base)) if os.path.isdir(base) else []
        return [(n, self.snapshotter(n)) for n in names]


def _utc_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_messages(loaded: list[str]) -> list[str]:
    """docker load's lines for ``ImageService.load``'s result ("Loaded image: busybox:latest")."""
    return [f"Loaded image ID: {n}" if n.startswith("sha256:") else f"Loaded image: {reference.parse(n).familiar()}"
            for n in loaded]


def describe_error(e: DockyardError) -> str:
    """One line for a command line: the message, plus the path or id it names when not in it."""
    extra = e.path or e.id
    return f"{e.message} ({extra})" if extra and extra not in e.message else e.message
