"""Online mark-and-sweep garbage collection of blobs, snapshots, ingests and expired leases.

Roots: image records (their target), lease resources, and whatever the
``roots`` callbacks return (containers add their snapshots and images there).
Marking walks content by media type: index -> manifests -> config + layers
(+ subject), and content labels ``containerd.io/gc.ref.content*`` (value: a
digest) and ``containerd.io/gc.ref.snapshot.<snapshotter>`` (value: a key).
A config marks the snapshots named by its chain IDs in every snapshotter
(unpacked layers are committed under their chain ID), and each marked snapshot
marks its parent chain. Active and view snapshots are always roots: they
belong to containers or to unpacks in progress.

Online safety: the whole collection holds ``Metadata.gc_lock`` exclusively.
Every metadata write transaction and every blob commit (rename + lease entry)
hold it shared, so nothing can become reachable between mark and sweep, and a
blob committed under a lease is in the lease before GC can look at it. Writers
of blobs that are not yet referenced must use a lease (or ``min_age``).
Snapshotters keep their own state; work on them that GC must not race (an
unpack) should happen under a lease holding the snapshot keys, or after the
image record exists (then chain IDs protect them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockyard.errors import DockyardError
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import chain_ids

from .content import ContentStore
from .leases import CONTENT, INGESTS, SNAPSHOTS_PREFIX, LeaseManager
from .metadata import Metadata

LABEL_REF_CONTENT = "containerd.io/gc.ref.content"
LABEL_REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."
_SNIFF_LIMIT = 4 << 20  # blobs of unknown type larger than this are not parsed as JSON

Roots = Callable[[], Iterable[tuple[str, str]]]
"""A callback returning extra roots as (kind, key): ("content", digest) or ("snapshots/<name>", key)."""


class GCSnapshotter(Protocol):
    """What GC needs of a snapshotter: ``walk`` yielding infos (key, kind, parent) and ``remove``."""

    def walk(self) -> Iterable[Any]: ...

    def remove(self, key: str) -> None: ...


@dataclass
class GCResult:
    removed_content: list[str] = field(default_factory=list)
    removed_snapshots: list[tuple[str, str]] = field(default_factory=list)
    removed_ingests: list[str] = field(default_factory=list)
    expired_leases: list[str] = field(default_factory=list)
    duration: float = 0.0


def _kind_name(kind: object) -> str:
    return str(getattr(kind, "value", kind)).lower()


class GarbageCollector:
    """Collects what no root reaches; see the module docstring."""

    def __init__(self, content: ContentStore, metadata: Metadata | None = None,
                 snapshotters: Mapping[str, GCSnapshotter] | None = None, roots: Iterable[Roots] = ()) -> None:
        self.content = content
        self.metadata = metadata or content.metadata
        self.snapshotters: dict[str, GCSnapshotter] = dict(snapshotters or {})
        self._roots: list[Roots] = list(roots)

    def add_roots(self, fn: Roots) -> None:
        self._roots.append(fn)

    def add_snapshotter(self, name: str, snapshotter: GCSnapshotter) -> None:
        self.snapshotters[name] = snapshotter

    def collect(self, *, ingest_max_age: float = 24 * 3600.0, min_age: float = 0.0) -> GCResult:
        """Mark and sweep. ``min_age``: blobs younger than this many seconds are kept."""
        start = time.monotonic()
        result = GCResult()
        with self.metadata.gc_lock(exclusive=True):
            leases = LeaseManager(self.metadata)
            result.expired_leases = leases.delete_expired()
            marker = _Marker(self.content, self.metadata, self.snapshotters)
            keep_ingests = marker.mark_roots(self._root_pairs(leases))
            marker.run()
            result.removed_snapshots = self._sweep_snapshots(marker)
            result.removed_content = self._sweep_content(marker.content, min_age)
            result.removed_ingests = self.content.clean_ingests(ingest_max_age, keep=keep_ingests)
        result.duration = time.monotonic() - start
        return result

    def _root_pairs(self, leases: LeaseManager) -> list[tuple[str, str, str | None]]:
        pairs: list[tuple[str, str, str | None]] = []
        for rec in self.metadata.list_images():
            pairs.append((CONTENT, rec.target.digest, rec.target.media_type))
        for res in leases.resources():
            pairs.append((res.kind, res.key, None))
        for fn in self._roots:
            pairs.extend((kind, key, None) for kind, key in fn())
        return pairs

    def _sweep_content(self, marked: set[str], min_age: float) -> list[str]:
        removed = []
        now = time.time()
        for info in list(self.content.walk()):
            if info.digest in marked or now - info.created_at < min_age:
                continue
            try:
                self.content.delete(info.digest)
            except DockyardError:
                continue
            removed.append(info.digest)
        return removed

    def _sweep_snapshots(self, marker: _Marker) -> list[tuple[str, str]]:
        removed: list[tuple[str, str]] = []
        for name, sn in self.snapshotters.items():
            infos = {i.key: i for i in sn.walk()}
            marked = marker.snapshot_closure(name, infos)
            doomed = {k for k, i in infos.items() if k not in marked and _kind_name(i.kind) == "committed"}
            while doomed:
                with_children = {i.parent for i in infos.values() if i.parent}
                leaves = sorted(k for k in doomed if k not in with_children)
                if not leaves:
                    break
                for key in leaves:
                    doomed.discard(key)
                    try:
                        sn.remove(key)
                    except DockyardError:
                        continue  # kept: its parents keep a child and stay too
                    infos.pop(key, None)
                    removed.append((name, key))
        return removed


class _Marker:
    """The mark phase: reachable digests and snapshot keys."""

    def __init__(self, content: ContentStore, metadata: Metadata, snapshotters: Mapping[str, GCSnapshotter]) -> None:
        self.store, self.snapshotter_names = content, list(snapshotters)
        self.labels = metadata.all_content_labels()
        self.content: set[str] = set()
        self.snapshots: dict[str, set[str]] = {n: set() for n in snapshotters}
        self._queue: list[tuple[str, str | None]] = []

    def mark_roots(self, pairs: Iterable[tuple[str, str, str | None]]) -> set[str]:
        """Queue the roots; returns the ingest refs held by leases."""
        ingests: set[str] = set()
        for kind, key, media_type in pairs:
            if kind == CONTENT:
                self._push(key, media_type)
            elif kind == INGESTS:
                ingests.add(key)
            elif kind.startswith(SNAPSHOTS_PREFIX):
                self._snapshot(kind[len(SNAPSHOTS_PREFIX):], key)
        return ingests

    def _push(self, d: str, media_type: str | None) -> None:
        if digests.is_valid(d) and d not in self.content:
            self.content.add(d)
            self._queue.append((d, media_type))

    def _snapshot(self, snapshotter: str, key: str) -> None:
        self.snapshots.setdefault(snapshotter, set()).add(key)

    def run(self) -> None:
        while self._queue:
            d, media_type = self._queue.pop()
            for k, v in self.labels.get(d, {}).items():
                if k.startswith(LABEL_REF_CONTENT):
                    self._push(v, None)
                elif k.startswith(LABEL_REF_SNAPSHOT):
                    self._snapshot(k[len(LABEL_REF_SNAPSHOT):], v)
            if media_type is not None and mt.is_layer(media_type):
                continue
            doc = self._load(d, media_type)
            if doc is not None:
                self._children(doc, media_type)

    def _load(self, d: str, media_type: str | None) -> dict[str, Any] | None:
        if not self.store.exists(d):
            return None
        if media_type is None and self.store.info(d).size > _SNIFF_LIMIT:
            return None
        known = media_type is not None and (mt.is_index(media_type) or mt.is_manifest(media_type)
                                            or mt.is_config(media_type))
        if media_type is not None and not known:
            return None
        try:
            doc = json.loads(self.store.read(d))
        except (ValueError, UnicodeDecodeError):
            return None
        return doc if isinstance(doc, dict) else None

    def _children(self, doc: dict[str, Any], media_type: str | None) -> None:
        mtype = media_type or doc.get("mediaType")
        descs: list[Any] = []
        if isinstance(doc.get("manifests"), list):
            descs += doc["manifests"]
        if isinstance(doc.get("config"), dict) and "digest" in doc["config"]:
            descs.append(doc["config"])
            descs += doc.get("layers") or []
        if isinstance(doc.get("subject"), dict):
            descs.append(doc["subject"])
        for desc in descs:
            if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
                self._push(desc["digest"], desc.get("mediaType") if isinstance(desc.get("mediaType"), str) else None)
        rootfs = doc.get("rootfs")
        if (mtype is None or mt.is_config(str(mtype))) and isinstance(rootfs, dict):
            try:
                chain = chain_ids(list(rootfs.get("diff_ids") or []))
            except DockyardError:
                return
            for name in self.snapshotter_names:
                for cid in chain:
                    self._snapshot(name, cid)

    def snapshot_closure(self, name: str, infos: Mapping[str, Any]) -> set[str]:
        """Marked keys of one snapshotter plus active/view snapshots, with their parent chains."""
        marked: set[str] = set()
        todo = [k for k in self.snapshots.get(name, set()) if k in infos]
        todo += [k for k, i in infos.items() if _kind_name(i.kind) != "committed"]
        while todo:
            key = todo.pop()
            if key in marked or key not in infos:
                continue
            marked.add(key)
            parent = infos[key].parent
            if parent:
                todo.append(parent)
        return marked


def collect(content: ContentStore, *, snapshotters: Mapping[str, GCSnapshotter] | None = None,
            roots: Iterable[Roots] = (), ingest_max_age: float = 24 * 3600.0, min_age: float = 0.0) -> GCResult:
    """One collection with a throw-away collector."""
    return GarbageCollector(content, snapshotters=snapshotters, roots=roots).collect(
        ingest_max_age=ingest_max_age, min_age=min_age)
