"""Which registry repositories hold a layer: dockerd's distribution metadata (v2metadata-by-diffid).

For every layer (by diff ID) the engine remembers the compressed blob digests it pushed, and the
repository ("host/path") each went to. A second push of the layer HEADs that digest first ("Layer
already exists") and a push to another repository of the same registry mounts the blob from a known
one ("Mounted from x") instead of uploading it again. Stored as one small JSON file, newest entry
last, replaced atomically; a lost or corrupt file only costs an upload.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 50  # per diff ID, like dockerd's bounded metadata lists


@dataclass(frozen=True)
class BlobSource:
    digest: str      # the compressed blob's digest
    repository: str  # "host[:port]/path" it is known to be in


class BlobSources:
    """Diff ID -> [BlobSource], persisted in ``path``; safe to use from several threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[list[str]]]:
        try:
            with open(self.path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def get(self, diff_id: str) -> list[BlobSource]:
        """Known sources of the layer, oldest first."""
        with self._lock:
            entries = self._load().get(diff_id) or []
        return [BlobSource(str(e[0]), str(e[1])) for e in entries if isinstance(e, list) and len(e) == 2]

    def add(self, diff_id: str, source: BlobSource) -> None:
        """Record (or refresh, moving it to the end) that ``source`` holds the layer."""
        self._update(diff_id, lambda entries: [*entries, [source.digest, source.repository]], source)

    def remove(self, diff_id: str, source: BlobSource) -> None:
        self._update(diff_id, lambda entries: entries, source)

    def _update(self, diff_id: str, change: Callable[[list[list[str]]], list[list[str]]], source: BlobSource) -> None:
        with self._lock:
            doc = self._load()
            entries = [e for e in doc.get(diff_id) or [] if e != [source.digest, source.repository]]
            entries = change(entries)[-MAX_ENTRIES:]
            if entries:
                doc[diff_id] = entries
            else:
                doc.pop(diff_id, None)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.path)

    def digests(self, diff_id: str) -> list[str]:
        """Known compressed digests of the layer, newest first, each once."""
        return list(dict.fromkeys(s.digest for s in reversed(self.get(diff_id))))
