"""Value types of the snapshotter interface (containerd's model) and the interface itself."""

from __future__ import annotations

import dataclasses
import enum
from typing import Iterator, Mapping, Protocol


class Kind(str, enum.Enum):
    """What a snapshot is: writable (active), read-only (view) or immutable and nameable (committed)."""

    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclasses.dataclass(frozen=True)
class Mount:
    """One mount(2) to perform: what `mount -t type -o options source target` would do."""

    type: str
    source: str
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "source": self.source, "options": list(self.options)}


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot's record: its key, kind, parent (a committed key) and labels."""

    key: str
    kind: Kind
    parent: str | None
    labels: Mapping[str, str]
    created_at: float
    updated_at: float


@dataclasses.dataclass(frozen=True)
class Usage:
    """Disk use of one snapshot's own layer (not its parents): bytes and inodes."""

    size: int
    inodes: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.size, self.inodes))


class Snapshotter(Protocol):
    """containerd's snapshotter: it returns mounts and never mounts anything itself."""

    def prepare(self, key: str, parent: str | None = None,
                labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    def view(self, key: str, parent: str | None,
             labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def stat(self, key: str) -> SnapshotInfo: ...

    def walk(self) -> Iterator[SnapshotInfo]: ...

    def usage(self, key: str) -> Usage: ...

    def upper_dir(self, key: str) -> str: ...

    def close(self) -> None: ...
