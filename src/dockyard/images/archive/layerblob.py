"""Layer blobs as archives need them: compression by magic, the uncompressed stream, the diff ID.

Docker's archive format holds uncompressed tars (``layer.tar``) whose digest *is* the diff ID, but
``docker load`` also accepts gzip/zstd ones, and OCI layouts usually hold gzip layers; writing
such a layer back into `docker save` form means decompressing it.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from typing import BinaryIO

import zstandard

from dockyard.errors import InvalidArgument
from dockyard.images.archive.types import BlobStore
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
_STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zstandard.ZstdError)


def compression_of(head: bytes) -> str:
    """"gzip", "zstd" or "" from the first bytes of a layer."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    return ""


def sniff(store: BlobStore, digest: str) -> str:
    with store.open(digest) as f:
        return compression_of(f.read(4))


def docker_media_type(compression: str) -> str:
    """The Docker schema2 layer media type for a compression (zstd has only an OCI one)."""
    return {"": mt.DOCKER_LAYER, "gzip": mt.DOCKER_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}[compression]


def oci_media_type(media_type: str) -> str:
    """The OCI equivalent of a Docker layer media type (OCI ones unchanged)."""
    return {mt.DOCKER_LAYER: mt.OCI_LAYER, mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
            mt.DOCKER_LAYER_FOREIGN: mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
            mt.DOCKER_CONFIG: mt.OCI_CONFIG, mt.DOCKER_MANIFEST: mt.OCI_MANIFEST,
            mt.DOCKER_MANIFEST_LIST: mt.OCI_INDEX}.get(media_type, media_type)


def decompressing(f: BinaryIO, compression: str) -> BinaryIO:
    """A reader of the uncompressed bytes of ``f``."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(f)  # type: ignore[return-value]
    return f


def diff_id(store: BlobStore, digest: str) -> str:
    """sha256 of the uncompressed tar of a stored layer (its digest when uncompressed)."""
    compression = sniff(store, digest)
    if not compression:
        return digest
    h = digests.Digester()
    with store.open(digest) as raw:
        try:
            reader = decompressing(raw, compression)
            while chunk := reader.read(CHUNK):
                h.update(chunk)
        except _STREAM_ERRORS as e:  # gzip.BadGzipFile is an OSError
            raise InvalidArgument(f"layer {digest}: corrupt {compression} stream: {e}", id=digest) from e
    return h.digest()


def uncompressed_copy(store: BlobStore, digest: str) -> tuple[BinaryIO, int]:
    """The uncompressed layer as (file, size): the blob itself, or a temporary decompressed copy."""
    compression = sniff(store, digest)
    raw = store.open(digest)
    if not compression:
        size = raw.seek(0, 2)
        raw.seek(0)
        return raw, size
    tmp = tempfile.TemporaryFile()
    with raw:
        shutil.copyfileobj(decompressing(raw, compression), tmp, CHUNK)
    size = tmp.tell()
    tmp.seek(0)
    return tmp, size  # type: ignore[return-value]
