"""Garbage collection: images, leases, labels, snapshots and stale ingests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pytest

from dockyard.errors import Conflict, NotFound
from dockyard.oci import digest, mediatypes as mt
from dockyard.oci.image import Descriptor, chain_ids
from dockyard.supervisor.content import ContentStore
from dockyard.supervisor.gc import GarbageCollector, collect
from dockyard.supervisor.leases import CONTENT, LeaseManager, snapshots_kind


@pytest.fixture
def store(tmp_path: object) -> ContentStore:
    return ContentStore(str(tmp_path))


def _image(store: ContentStore, tag: bytes) -> tuple[Descriptor, list[str], list[str]]:
    """An image (index -> manifest -> config + 2 layers); (index descriptor, blob digests, diff IDs)."""
    layers = [store.add(b"layer-1-" + tag), store.add(b"layer-2-" + tag)]
    diff_ids = layers  # uncompressed layers: diff ID = blob digest
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg = store.add(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg, "size": len(config)},
                           "layers": [{"mediaType": mt.OCI_LAYER, "digest": d, "size": 9} for d in layers]}).encode()
    man = store.add(manifest)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": man, "size": len(manifest),
                                       "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    idx = store.add(index)
    return Descriptor(mt.OCI_INDEX, idx, len(index)), [idx, man, cfg, *layers], diff_ids


def test_images_keep_their_graph(store: ContentStore) -> None:
    d1, blobs1, _ = _image(store, b"a")
    d2, blobs2, _ = _image(store, b"b")
    stray = store.add(b"stray")
    store.metadata.put_image("docker.io/library/a:latest", d1)
    store.metadata.put_image("docker.io/library/b:latest", d2)
    result = collect(store)
    assert result.removed_content == [stray]
    assert all(store.exists(d) for d in blobs1 + blobs2)
    store.metadata.delete_image("docker.io/library/b:latest")
    result = collect(store)
    assert sorted(result.removed_content) == sorted(blobs2)
    assert all(store.exists(d) for d in blobs1)


def test_leases_protect_and_expire(store: ContentStore) -> None:
    lm = LeaseManager(store.metadata)
    with lm.lease() as lease:
        d = store.add(b"pulled", lease=lease.id)
        w = store.writer("in-flight", lease=lease.id)
        w.write(b"x")
        w.commit()
        assert collect(store).removed_content == []
        assert store.exists(d)
    lm.create("gone", expires_in=-1)
    store.add(b"z", lease="gone")
    result = collect(store)
    assert result.expired_leases == ["gone"]
    assert len(result.removed_content) == 3


def test_label_references_and_extra_roots(store: ContentStore) -> None:
    child = store.add(b"child")
    parent = store.add(b"parent", labels={"containerd.io/gc.ref.content.0": child})
    other = store.add(b"other")
    gcr = GarbageCollector(store, roots=[lambda: [(CONTENT, parent)]])
    gcr.add_roots(lambda: [(CONTENT, other)])
    assert gcr.collect().removed_content == []
    assert collect(store).removed_content.__len__() == 3


def test_min_age_and_stale_ingests(store: ContentStore) -> None:
    d = store.add(b"fresh")
    assert collect(store, min_age=3600).removed_content == []
    store.writer("stale").close()
    live = store.writer("live")
    result = collect(store, ingest_max_age=0)
    assert result.removed_content == [d] and result.removed_ingests == ["stale"]
    live.abort()


@dataclass
class Info:
    key: str
    kind: str
    parent: str | None
    labels: dict[str, str] = field(default_factory=dict)


class FakeSnapshotter:
    def __init__(self) -> None:
        self.infos: dict[str, Info] = {}

    def add(self, key: str, kind: str, parent: str | None = None) -> None:
        self.infos[key] = Info(key, kind, parent)

    def walk(self) -> list[Info]:
        return list(self.infos.values())

    def remove(self, key: str) -> None:
        if key not in self.infos:
            raise NotFound(key)
        if any(i.parent == key for i in self.infos.values()):
            raise Conflict(f"snapshot {key} has children")
        del self.infos[key]


def test_snapshots_by_chain_id_leases_and_active(store: ContentStore) -> None:
    desc, _, diff_ids = _image(store, b"s")
    store.metadata.put_image("img", desc)
    c1, c2 = chain_ids(diff_ids)
    sn = FakeSnapshotter()
    sn.add(c1, "committed")
    sn.add(c2, "committed", c1)
    sn.add("orphan-base", "committed")
    sn.add("orphan-top", "committed", "orphan-base")
    sn.add("leased", "committed")
    sn.add("ctr-base", "committed")
    sn.add("ctr-rw", "active", "ctr-base")
    lm = LeaseManager(store.metadata)
    lm.create("l")
    lm.add_resource("l", snapshots_kind("overlayfs"), "leased")
    result = collect(store, snapshotters={"overlayfs": sn})
    assert sorted(result.removed_snapshots) == [("overlayfs", "orphan-base"), ("overlayfs", "orphan-top")]
    assert sorted(sn.infos) == sorted([c1, c2, "leased", "ctr-base", "ctr-rw"])
    store.metadata.delete_image("img")
    lm.delete("l")
    result = collect(store, snapshotters={"overlayfs": sn})
    assert sorted(sn.infos) == ["ctr-base", "ctr-rw"]


def test_gc_online_with_concurrent_writers(store: ContentStore) -> None:
    """Blobs committed under a lease while GC runs repeatedly are never lost."""
    lm = LeaseManager(store.metadata)
    lease = lm.create("writer")
    written: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(200):
                written.append(store.add(f"blob-{i}".encode(), lease=lease.id))
        finally:
            stop.set()

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        collect(store, ingest_max_age=0)  # also races the stale-ingest sweep against fresh ingests
    t.join(timeout=60)
    assert len(written) == 200
    collect(store)
    assert all(store.exists(d) for d in written)
