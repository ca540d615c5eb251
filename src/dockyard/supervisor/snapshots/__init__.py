"""Snapshotters (containerd's design): prepare/view/commit/remove return mounts, never mount.

`open_snapshotter("overlayfs" | "native", root)`; `mount_all` / `unmount_all`
apply the returned mounts (they need root). Committed snapshots of image
layers are named by chain ID, so identical layer stacks are stored once.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from ...kernel.mount import mount_all as _mount_all
from ...kernel.mount import unmount_all as _unmount_all
from .base import BaseSnapshotter, disk_usage
from .native import NativeSnapshotter
from .overlay import OverlaySnapshotter
from .types import Kind, Mount, SnapshotInfo, Snapshotter, Usage

__all__ = ["BaseSnapshotter", "Kind", "Mount", "NativeSnapshotter", "OverlaySnapshotter", "SnapshotInfo",
           "Snapshotter", "Usage", "disk_usage", "mount_all", "open_snapshotter", "unmount_all"]

SNAPSHOTTERS: dict[str, type[BaseSnapshotter]] = {"overlayfs": OverlaySnapshotter, "native": NativeSnapshotter}


def open_snapshotter(name: str, root: str) -> BaseSnapshotter:
    """The snapshotter ``name`` ("overlayfs" or "native") keeping its state under ``root``."""
    try:
        cls = SNAPSHOTTERS[name]
    except KeyError:
        raise InvalidArgument(f"unknown snapshotter {name!r} (known: {', '.join(SNAPSHOTTERS)})") from None
    return cls(root)


def mount_all(mounts: list[Mount], target: str) -> None:
    """Mount ``mounts`` on ``target`` in order (root only); undone on failure."""
    _mount_all(mounts, target)


def unmount_all(target: str, *, detach: bool = False) -> None:
    """Unmount everything on ``target``."""
    _unmount_all(target, detach=detach)
