"""Test helpers for images: an in-memory blob store and builders of synthetic archives and layers."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import digest as digests
from dockyard.oci.image import chain_ids


@dataclass(frozen=True)
class MemInfo:
    digest: str
    size: int


class MemoryStore:
    """The BlobStore protocol over a dict (verifies expected digests like the real store)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, data: bytes | BinaryIO, *, expected: str | None = None, size: int | None = None) -> str:
        raw = data if isinstance(data, bytes) else data.read()
        if size is not None and len(raw) != size:
            raise InvalidArgument(f"size {len(raw)} != expected {size}")
        d = digests.from_bytes(raw)
        if expected is not None and d != expected:
            raise InvalidArgument(f"digest {d} does not match expected {expected}", id=expected)
        self.blobs[d] = raw
        return d

    def open(self, d: str) -> BinaryIO:
        if d not in self.blobs:
            raise NotFound(f"content {d} not found", id=d)
        return io.BytesIO(self.blobs[d])

    def info(self, d: str) -> MemInfo:
        if d not in self.blobs:
            raise NotFound(f"content {d} not found", id=d)
        return MemInfo(d, len(self.blobs[d]))

    def exists(self, d: str) -> bool:
        return d in self.blobs


def layer_tar(files: dict[str, bytes | None]) -> bytes:
    """A layer: name -> content (None = directory); names ending in .wh.* are whiteouts (empty files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_config(diff_ids: list[str], cmd: list[str] | None = None) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd or ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diff_ids]}).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(images: list[tuple[list[str], list[bytes]]], *, gzip_layers: bool = False,
                   drop: str | None = None) -> bytes:
    """A `docker save` tar of images given as (tags, layer tars); manifest.json last, as Docker does.

    ``drop``: leave out the file of that name (to test missing entries).
    """
    buf = io.BytesIO()
    manifest = []
    written: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for tags, layers in images:
            diff_ids = [digests.from_bytes(layer) for layer in layers]
            names = []
            for layer, diff, chain in zip(layers, diff_ids, chain_ids(diff_ids)):
                dirname = digests.hex_of(chain)
                name = f"{dirname}/layer.tar"
                if written.get(diff) == name:
                    pass
                elif diff in written:
                    info = tarfile.TarInfo(name)
                    info.type, info.linkname = tarfile.SYMTYPE, f"../{written[diff]}"
                    tar.addfile(info)
                elif name != drop:
                    _add(tar, name, gzip.compress(layer) if gzip_layers else layer)
                    written[diff] = name
                names.append(name)
            config = image_config(diff_ids)
            config_name = digests.hex_of(digests.from_bytes(config)) + ".json"
            if config_name != drop:
                _add(tar, config_name, config)
            manifest.append({"Config": config_name, "RepoTags": tags, "Layers": names})
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buf.getvalue()


def tar_members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_file(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()
