"""Every path of the content store, built here and nowhere else.

::

    <root>/content/
      blobs/
        sha256/<hex>            committed blobs, read-only (0444), visible only once renamed here
        sha512/<hex>
      ingest/
        <sha256 of ref>/        one directory per in-progress write, keyed by the writer's ref
          ref                   the ref itself (the directory name is only its hash)
          data                  bytes written so far; Writer.offset = its size (resume point)
          startedat             creation time (float seconds), used to expire stale ingests
          total                 expected total size, when the writer announced one
          expected              expected digest, when the writer announced one
          lock                  flock'ed exclusively while a Writer has the ref open
      tmp/                      scratch for ``add`` of in-memory data (same filesystem as blobs/)
"""

from __future__ import annotations

import hashlib
import os

from dockyard.oci import digest as digests


class ContentPaths:
    """Paths under ``<root>/content``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(os.path.abspath(root), "content")
        self.blobs = os.path.join(self.root, "blobs")
        self.ingest = os.path.join(self.root, "ingest")

    def blob(self, d: str) -> str:
        return os.path.join(self.blobs, digests.algorithm_of(d), digests.hex_of(d))

    def blob_dir(self, algorithm: str) -> str:
        return os.path.join(self.blobs, algorithm)

    def ingest_dir(self, ref: str) -> str:
        return os.path.join(self.ingest, hashlib.sha256(ref.encode()).hexdigest())

    @staticmethod
    def ingest_file(ingest_dir: str, name: str) -> str:
        """``name`` is one of: ref, data, startedat, total, expected, lock."""
        return os.path.join(ingest_dir, name)

    def ensure(self) -> None:
        for algorithm in ("sha256", "sha512"):
            os.makedirs(self.blob_dir(algorithm), exist_ok=True)
        os.makedirs(self.ingest, exist_ok=True)
