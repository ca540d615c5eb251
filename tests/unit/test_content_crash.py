"""kill -9 an importer at random points; the reopened store must be consistent and resumable."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from dockyard.oci import digest, mediatypes as mt
from dockyard.oci.image import Manifest
from dockyard.supervisor.content import ContentStore
from dockyard.supervisor.gc import collect

IMAGES = 12

# The importer: deterministic images (so a rerun resumes the same refs), each written under a lease,
# layers streamed through resumable writers, then the image record put in one transaction.
CHILD = r'''
import json, random, sys
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import Descriptor
from dockyard.supervisor.content import ContentStore
from dockyard.supervisor.leases import LeaseManager

root, count = sys.argv[1], int(sys.argv[2])
store = ContentStore(root)
leases = LeaseManager(store.metadata)
print("ready", flush=True)

def put(ref, data, lease):
    from dockyard.oci import digest
    d = digest.from_bytes(data)
    if store.exists(d):
        return d
    with store.writer(ref, expected=d, total=len(data), lease=lease) as w:
        pos = w.offset
        while pos < len(data):
            w.write(data[pos:pos + 65536])
            pos += 65536
        return w.commit()

for i in range(count):
    name = f"docker.io/library/crash{i}:latest"
    try:
        store.metadata.get_image(name)
        continue
    except Exception:
        pass
    rng = random.Random(i)
    with leases.lease() as lease:
        layers = [put(f"img{i}-layer{j}", rng.randbytes(rng.randint(1, 3) << 20), lease.id) for j in range(3)]
        cfg = json.dumps({"architecture": "amd64", "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": layers}}).encode()
        cfg_d = put(f"img{i}-config", cfg, lease.id)
        man = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                          "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg_d, "size": len(cfg)},
                          "layers": [{"mediaType": mt.OCI_LAYER, "digest": d, "size": store.info(d).size}
                                     for d in layers]}).encode()
        man_d = put(f"img{i}-manifest", man, lease.id)
        store.metadata.put_image(name, Descriptor(mt.OCI_MANIFEST, man_d, len(man)))
print("done", flush=True)
'''


def _run(root: str, kill_after: float | None) -> bool:
    """Run the importer; SIGKILL it ``kill_after`` seconds after it is ready. True if it finished."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, root, str(IMAGES)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    out = proc.stdout.read()  # not communicate(): it would bypass what readline() already buffered
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait(timeout=120)
    if kill_after is None and proc.returncode != 0:
        raise AssertionError(f"importer failed ({proc.returncode}): {err}")
    return proc.returncode == 0 and "done" in out


def _check_consistent(root: str) -> int:
    store = ContentStore(root)
    try:
        assert store.metadata.integrity_check() == "ok"
        for info in store.walk():  # no partially visible blob
            with store.open(info.digest) as f:
                dg = digest.Digester()
                while chunk := f.read(1 << 20):
                    dg.update(chunk)
            assert dg.digest() == info.digest and dg.size == info.size
        images = store.metadata.list_images()
        for rec in images:  # every image's blobs present
            manifest = Manifest.from_bytes(store.read(rec.target.digest))
            assert rec.target.media_type == mt.OCI_MANIFEST
            for desc in (manifest.config, *manifest.layers):
                assert store.exists(desc.digest), f"{rec.name}: missing {desc.digest}"
        for status in store.list_ingests():  # resumable: offset within bounds, digest prefix intact
            assert status.total is None or status.offset <= status.total
        collect(store)  # GC after a crash: expired leases none, images keep their graph
        for rec in images:
            assert store.exists(rec.target.digest)
        return len(images)
    finally:
        store.close()


def test_kill9_during_import_leaves_consistent_store(tmp_path: object) -> None:
    root = str(tmp_path)
    rng = random.Random(int(os.environ.get("DOCKYARD_CRASH_SEED", "1234")))
    seen, kills = [], 0
    for _ in range(8):
        finished = _run(root, kill_after=rng.uniform(0.0, 0.25))
        kills += not finished
        seen.append(_check_consistent(root))
        if finished:
            break
    assert kills >= 2, "the importer finished before it could be killed: make the workload larger"
    assert _run(root, kill_after=None)  # resumes and completes
    assert _check_consistent(root) == IMAGES
    assert seen == sorted(seen)  # images only ever appear, never vanish
    store = ContentStore(root)
    # A kill between a commit's rename and the removal of its ingest dir leaves an ingest whose blob
    # exists; the rerun skips it and GC's stale-ingest sweep (here: any age) removes it.
    store.clean_ingests(older_than=0)
    assert store.list_ingests() == []
    with open(os.path.join(root, "content", "blobs", "sha256", digest.hex_of(
            store.metadata.list_images()[0].target.digest)), "rb") as f:
        assert json.loads(f.read())["mediaType"] == mt.OCI_MANIFEST
    store.close()
