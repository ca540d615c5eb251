"""Unpacking a pull's layers while the rest are still downloading.

As soon as a layer blob is committed (verified) in the content store, a worker thread starts
applying it into a snapshot (dockyard.images.unpack: layers are applied concurrently and committed
bottom first), so extraction overlaps the downloads instead of following them. This is only a head
start: after the image is recorded, the puller unpacks the image as before, which finds the chain
IDs committed here and skips them, or redoes whatever is missing (a download failed, a diff ID did
not match, or a GC removed an unreferenced snapshot meanwhile); errors here are therefore not
reported, the final unpack reports them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from typing import BinaryIO

from dockyard.errors import DockyardError
from dockyard.images.unpack import LayerSource, unpack_layers
from dockyard.oci.image import Manifest
from dockyard.supervisor.images import ImageService

log = logging.getLogger(__name__)


class _Abandoned(DockyardError):
    """The pull ended before this layer arrived."""


class EarlyUnpack:
    """Applies the layers named by ``ready`` (blob digests) as they arrive; ``finish`` waits for it."""

    def __init__(self, images: ImageService, digests: list[str], diff_ids: list[str]) -> None:
        self._images = images
        self._events = {d: threading.Event() for d in digests}
        self._abandoned = False
        sn = images.snapshotter(images.default_snapshotter)
        sources = [LayerSource(diff_id, functools.partial(self._open, d), d) for d, diff_id in zip(digests, diff_ids)]
        self._future = asyncio.get_running_loop().run_in_executor(None, unpack_layers, sn, sources)

    @classmethod
    def start(cls, images: ImageService, manifest: Manifest, config: bytes) -> EarlyUnpack | None:
        """Start unpacking in the background; None when the config does not pair diff IDs with layers."""
        diff_ids = (json.loads(config).get("rootfs") or {}).get("diff_ids") or []
        digests = [layer.digest for layer in manifest.layers]
        if not digests or len(digests) != len(diff_ids) or not all(isinstance(d, str) for d in diff_ids):
            return None
        return cls(images, digests, diff_ids)

    def ready(self, digest: str) -> None:
        """The blob ``digest`` is in the content store: its layer can be applied."""
        event = self._events.get(digest)
        if event is not None:
            event.set()

    def _open(self, digest: str) -> BinaryIO:
        self._events[digest].wait()
        if self._abandoned and not self._images.content.exists(digest):
            raise _Abandoned(f"layer {digest} was not downloaded")
        return self._images.content.open(digest)

    async def finish(self) -> None:
        """Wait for the worker; layers that never arrived end it (their snapshots are discarded)."""
        self._abandoned = True
        for event in self._events.values():
            event.set()
        try:
            await self._future
        except Exception as e:  # the final unpack redoes and reports it
            log.debug("early unpack stopped: %s", e)
