"""Export a filesystem tree (a container's mounted root) as a tar stream (`docker export`).

Ownership is numeric, as in image layers; sockets are skipped (tar cannot hold them). Overlay
whiteouts never appear: the caller tars the merged view, not an upper dir.
"""

from __future__ import annotations

import os
import tarfile
from typing import BinaryIO

from dockyard.images.archive.tarwriter import COPY_BUFFER


def _numeric(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uname = info.gname = ""
    return info


def export_tree(root: str, out: BinaryIO) -> None:
    """Write every entry under ``root`` (not ``root`` itself) to ``out`` as a PAX tar, sorted by name."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as tar:  # type: ignore[call-overload]
        for name in sorted(os.listdir(root)):
            tar.add(os.path.join(root, name), arcname=name, filter=_numeric)
