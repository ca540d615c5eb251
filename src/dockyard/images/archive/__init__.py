"""Image archives: Docker's `docker save` format, the OCI image layout, rootfs import, fs export.

Everything here is pure code over file objects and a ``BlobStore`` (the content store's
add/open/info/exists); nothing mounts, nothing needs root. The image service
(dockyard.supervisor.images) ties these readers and writers to the stores.

Flow of a load: ``contents.ingest_tar`` (or ``ingest_dir``) streams every file of the archive once:
big files and blobs go straight into the store, small JSON stays in memory; then ``docker.read`` or
``oci_layout.read`` turns the files into ``LoadedImage`` records (manifest descriptor + names).
"""

from __future__ import annotations

from dockyard.images.archive.contents import ArchiveContents, ingest_dir, ingest_tar
from dockyard.images.archive.types import BlobStore, ImageToSave, LoadedImage, Target

__all__ = ["ArchiveContents", "BlobStore", "ImageToSave", "LoadedImage", "Target", "ingest_dir",
           "ingest_tar", "read_archive"]


def read_archive(contents: ArchiveContents, store: BlobStore) -> list[LoadedImage]:
    """Images of an ingested archive: manifest.json wins (it has the tags), else index.json."""
    from dockyard.images.archive import docker, oci_layout
    from dockyard.errors import InvalidArgument

    if contents.has("manifest.json"):
        return docker.read(contents, store)
    if contents.has("index.json"):
        return oci_layout.read(contents, store)
    raise InvalidArgument("not an image archive: neither manifest.json nor index.json found")
