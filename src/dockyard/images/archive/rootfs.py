"""Import a root filesystem tarball as a one-layer image (`docker import` semantics).

The tarball (plain, gzip or zstd) is stored uncompressed, so the layer digest is the diff ID, as
`docker import` stores it; the config gets the ``--change`` instructions, a history entry with the
comment ("Imported from -" by default) and the host platform.
"""

from __future__ import annotations

import datetime
import io
from typing import Any, BinaryIO

from dockyard.images.archive import layerblob
from dockyard.images.archive.changes import apply_changes
from dockyard.images.archive.types import BlobStore, LoadedImage, Target, dumps
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import host_platform

class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``stream``: sniff magic bytes of a stream that cannot seek."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def import_rootfs(stream: BinaryIO, store: BlobStore, *, changes: list[str] | None = None,
                  comment: str = "Imported from -", created: str | None = None) -> LoadedImage:
    """Store ``stream`` as a layer and a config + Docker schema2 manifest around it."""
    head = stream.read(4)
    compression = layerblob.compression_of(head)
    reader = io.BufferedReader(_Prefixed(head, stream), layerblob.CHUNK)
    layer_digest = store.add(layerblob.decompressing(reader, compression))  # type: ignore[arg-type]
    layer_size = int(store.info(layer_digest).size)
    when = created or _now()
    host = host_platform()
    config: dict[str, Any] = {
        "architecture": host.architecture, **({"variant": host.variant} if host.variant else {}), "comment": comment,
        "config": apply_changes({}, changes or []), "created": when,
        "history": [{"created": when, "comment": comment}], "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_raw = dumps(config)
    config_digest = store.add(config_raw, size=len(config_raw))
    manifest = dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                      "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config_raw), "digest": config_digest},
                      "layers": [{"mediaType": mt.DOCKER_LAYER, "size": layer_size, "digest": layer_digest}]})
    target = Target(mt.DOCKER_MANIFEST, store.add(manifest, size=len(manifest)), len(manifest))
    return LoadedImage(target, config_digest)
