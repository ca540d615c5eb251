"""Unpacking an image's layers into committed snapshots named by chain ID.

Identical layer stacks are unpacked once: a chain ID already committed is
skipped, and a concurrent unpack that commits the same chain ID first wins
(ours is discarded). With a snapshotter whose layer directories are
independent (overlay: ``detached_layers``), missing layers are applied
concurrently into parentless snapshots and committed in order, each onto the
one below; otherwise they are applied one after the other on top of each
other (native: the naive whiteout form needs the parent's tree). Applying
already overlaps decompression and hashing with extraction (a reader thread
per layer). Nothing is visible before its commit: on error every snapshot
this call prepared is removed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import uuid
from typing import BinaryIO, Callable, Mapping, Protocol, Sequence

from ..errors import Conflict, InvalidArgument, NotFound
from ..oci.image import chain_ids
from .layers import LayerResult, WhiteoutFormat, apply_layer


@dataclasses.dataclass(frozen=True)
class LayerSource:
    """One layer to unpack: its expected diff ID and how to open its blob."""

    diff_id: str
    open: Callable[[], BinaryIO]
    name: str = ""  # for errors (e.g. the blob digest)


class UnpackSnapshotter(Protocol):
    """What unpacking needs (dockyard.supervisor.snapshots.BaseSnapshotter)."""

    name: str
    detached_layers: bool

    def prepare(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> object: ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None, *,
               parent: str | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def stat(self, key: str) -> object: ...

    def upper_dir(self, key: str) -> str: ...


def unpack_layers(sn: UnpackSnapshotter, layers: Sequence[LayerSource], *, workers: int = 2,
                  labels: Mapping[str, str] | None = None) -> str:
    """Unpack ``layers`` (bottom first) into ``sn``; return the top chain ID ('' for no layers)."""
    chains = chain_ids([layer.diff_id for layer in layers])
    missing = [i for i, chain in enumerate(chains) if not _exists(sn, chain)]
    if not missing:
        return chains[-1] if chains else ""
    whiteouts: WhiteoutFormat = "overlay" if sn.detached_layers else "naive"
    if sn.detached_layers and len(missing) > 1 and workers > 1:
        _parallel(sn, layers, chains, missing, workers, labels)
    else:
        for i in missing:
            parent = chains[i - 1] if i else None
            key = _key(chains[i])
            sn.prepare(key, parent, labels)
            try:
                _apply(sn, key, layers[i], whiteouts)
                _commit(sn, chains[i], key, None)
            except BaseException:
                _discard(sn, key)
                raise
    return chains[-1]


def _parallel(sn: UnpackSnapshotter, layers: Sequence[LayerSource], chains: list[str], missing: list[int],
              workers: int, labels: Mapping[str, str] | None) -> None:
    keys = {i: _key(chains[i]) for i in missing}
    prepared: list[str] = []
    try:
        for i in missing:
            sn.prepare(keys[i], None, labels)
            prepared.append(keys[i])
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="unpack") as pool:
            futures = {i: pool.submit(_apply, sn, keys[i], layers[i], "overlay") for i in missing}
            for i in missing:  # commit in order: each needs the one below committed
                futures[i].result()
                _commit(sn, chains[i], keys[i], chains[i - 1] if i else None)
                prepared.remove(keys[i])
    finally:
        for key in prepared:
            _discard(sn, key)


def _key(chain: str) -> str:
    return f"extract-{uuid.uuid4().hex} {chain}"


def _apply(sn: UnpackSnapshotter, key: str, layer: LayerSource, whiteouts: WhiteoutFormat) -> LayerResult:
    with layer.open() as blob:
        result = apply_layer(blob, sn.upper_dir(key), whiteout_format=whiteouts)
    if result.diff_id != layer.diff_id:
        what = layer.name or layer.diff_id
        raise InvalidArgument(f"layer {what}: content has diff ID {result.diff_id}, the image config says "
                              f"{layer.diff_id}", id=what)
    return result


def _commit(sn: UnpackSnapshotter, chain: str, key: str, parent: str | None) -> None:
    try:
        if parent is None:
            sn.commit(chain, key)
        else:
            sn.commit(chain, key, parent=parent)
    except Conflict:
        if not _exists(sn, chain):
            raise
        sn.remove(key)  # lost a race: the same chain ID was committed meanwhile


def _exists(sn: UnpackSnapshotter, key: str) -> bool:
    try:
        sn.stat(key)
    except NotFound:
        return False
    return True


def _discard(sn: UnpackSnapshotter, key: str) -> None:
    try:
        sn.remove(key)
    except NotFound:
        pass
