"""The copying snapshotter (fallback without overlayfs): each snapshot is a full copy of its parent.

prepare and view copy the parent's tree (copy_file_range: reflinks where the
filesystem can); mounts are bind mounts. Layers are applied with the "naive"
whiteout form, which deletes what a whiteout names.
"""

from __future__ import annotations

import os

from .base import BaseSnapshotter
from .copy import copy_tree
from .storage import Record
from .types import Kind, Mount


class NativeSnapshotter(BaseSnapshotter):
    """Full copies; works on any filesystem, mounts need root."""

    name = "native"

    def _populate(self, tmp: str, kind: Kind, parents: list[Record]) -> None:
        fs = os.path.join(tmp, "fs")
        os.mkdir(fs, 0o755)
        if parents:
            copy_tree(self._fs(parents[0].id), fs)

    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        rw = rec.info.kind is Kind.ACTIVE
        return [Mount("bind", self._fs(rec.id), ("rw" if rw else "ro", "rbind"))]
