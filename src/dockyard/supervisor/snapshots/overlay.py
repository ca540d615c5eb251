"""The overlayfs snapshotter (default): each snapshot is one layer directory; mounts stack them.

Mounts (as containerd returns them): a snapshot without parent is a bind mount
of its own directory; an active snapshot with parents is an overlay mount
(upperdir = its fs, lowerdir = the parents' fs, nearest first); a view of one
parent is a read-only bind of that parent; a view of several is an overlay
with lowerdirs only (read-only by construction).
"""

from __future__ import annotations

import os

from .base import BaseSnapshotter
from .storage import Record
from .types import Kind, Mount


class OverlaySnapshotter(BaseSnapshotter):
    """Layers as overlayfs lower/upper directories; needs root and overlayfs to mount."""

    name = "overlayfs"
    detached_layers = True

    def _populate(self, tmp: str, kind: Kind, parents: list[Record]) -> None:
        os.mkdir(os.path.join(tmp, "fs"), 0o755)
        if kind is Kind.ACTIVE:
            os.mkdir(os.path.join(tmp, "work"), 0o711)

    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        rw = rec.info.kind is Kind.ACTIVE
        if not parents:
            return [Mount("bind", self._fs(rec.id), ("rw" if rw else "ro", "rbind"))]
        if not rw and len(parents) == 1:
            return [Mount("bind", self._fs(parents[0].id), ("ro", "rbind"))]
        lower = "lowerdir=" + ":".join(self._fs(p.id) for p in parents)
        if not rw:
            return [Mount("overlay", "overlay", (lower,))]
        options: tuple[str, ...] = (f"workdir={os.path.join(self._dir(rec.id), 'work')}", f"upperdir={self._fs(rec.id)}", lower)
        if os.path.exists("/sys/module/overlay/parameters/index"):
            options = ("index=off",) + options
        return [Mount("overlay", "overlay", options)]
