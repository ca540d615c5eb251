"""Value objects shared by the archive readers and writers, and the store they need."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol


class BlobInfo(Protocol):
    @property
    def size(self) -> int: ...


class BlobStore(Protocol):
    """The part of the content store (dockyard.supervisor.content.ContentStore) archives use."""

    def add(self, data: bytes | BinaryIO, *, expected: str | None = None, size: int | None = None) -> str: ...

    def open(self, digest: str) -> BinaryIO: ...

    def info(self, digest: str) -> Any: ...

    def exists(self, digest: str) -> bool: ...


@dataclass(frozen=True)
class Target:
    """What an image name points at: a manifest or an index (a descriptor's core)."""

    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class LoadedImage:
    """One image found in an archive: its target (stored) and the names it carries (maybe none)."""

    target: Target
    config_digest: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageToSave:
    """One image to write into an archive: resolved to one manifest, plus the names to record."""

    manifest: Target
    names: tuple[str, ...] = ()
    # for OCI layouts: the original target (an index, say) to record instead of the manifest
    index_target: Target | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def read_json(store: BlobStore, digest: str) -> Any:
    """Parse a (small) JSON blob of the store."""
    with store.open(digest) as f:
        return json.loads(f.read())


def dumps(obj: Any) -> bytes:
    """Canonical compact JSON, as Docker and containerd write manifests."""
    return json.dumps(obj, separators=(",", ":")).encode()
