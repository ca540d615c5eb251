"""ImageService over a real content store and metadata in a temp dir (no root, no snapshots)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.oci import digest as digests
from dockyard.supervisor.images import ID_LABEL, ImageService, load_messages
from tests.support.images import docker_archive, layer_tar, tar_file, tar_members

BASE = layer_tar({"bin": None, "bin/sh": b"#!sh"})
TOP = layer_tar({"data": None, "data/a": b"a"})


@pytest.fixture
def svc(tmp_path: str) -> Iterator[ImageService]:
    s = ImageService(os.path.join(str(tmp_path), "root"))
    yield s
    s.close()


def test_load_names_and_ids(svc: ImageService) -> None:
    loaded = svc.load(io.BytesIO(docker_archive([(["app:v1", "reg:5000/x/app:v2"], [BASE, TOP]), ([], [BASE])])))
    lines = load_messages(loaded)
    assert loaded[:2] == ["docker.io/library/app:v1", "reg:5000/x/app:v2"]
    assert lines[:2] == ["Loaded image: app:v1", "Loaded image: reg:5000/x/app:v2"]
    assert lines[2].startswith("Loaded image ID: sha256:")
    names = [r.name for r in svc.list()]
    assert "docker.io/library/app:v1" in names and "reg:5000/x/app:v2" in names
    rec = svc.get("app:v1")
    image_id = rec.labels[ID_LABEL]
    assert svc.get(image_id[7:19]).labels[ID_LABEL] == image_id
    assert svc.get(lines[2].split(": ")[1]).name == lines[2].split(": ")[1]
    assert not svc.leases.list()  # the load lease is gone


def test_tag_remove_and_conflicts(svc: ImageService) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE])])))
    image_id = svc.get("app:v1").labels[ID_LABEL]
    assert svc.tag("app:v1", "other/app:x") == "docker.io/other/app:x"
    with pytest.raises(Conflict):
        svc.remove(image_id)
    assert svc.remove("app:v1") == ["docker.io/library/app:v1"]
    with pytest.raises(NotFound):
        svc.get("app:v1")
    assert svc.remove(image_id) == ["docker.io/other/app:x"]
    assert svc.list() == []


def test_moving_the_last_name_keeps_the_old_image_by_id(svc: ImageService) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE])])))
    old_id = svc.get("app:v1").labels[ID_LABEL]
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [TOP])])))  # the tag moves to the new image
    assert svc.get("app:v1").labels[ID_LABEL] != old_id
    assert svc.get(old_id).name == old_id  # still there, dangling, as `docker images` shows <none>
    svc.load(io.BytesIO(docker_archive([([], [TOP])])))  # untagged load of a named image: no new record
    assert len(svc.list()) == 2


def test_save_docker_roundtrip_same_id(svc: ImageService, tmp_path: str) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP])])))
    svc.tag("app:v1", "app:v2")
    out = io.BytesIO()
    svc.save(["app:v1", "app:v2"], out)
    manifest = json.loads(tar_file(out.getvalue(), "manifest.json"))
    assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["app:v1", "app:v2"]
    with ImageService(os.path.join(str(tmp_path), "other")) as again:
        assert again.load(io.BytesIO(out.getvalue())) == ["docker.io/library/app:v1", "docker.io/library/app:v2"]
        assert again.get("app:v2").labels[ID_LABEL] == svc.get("app:v1").labels[ID_LABEL]


def test_save_oci_dir_and_load_back(svc: ImageService, tmp_path: str) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP])])))
    layout = os.path.join(str(tmp_path), "layout")
    svc.save(["app:v1"], layout, format="oci")
    assert json.load(open(os.path.join(layout, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
    with ImageService(os.path.join(str(tmp_path), "other")) as again:
        assert again.load(layout) == ["docker.io/library/app:v1"]
        assert again.get("app:v1").labels[ID_LABEL] == svc.get("app:v1").labels[ID_LABEL]


def test_bad_archive_leaves_no_record(svc: ImageService) -> None:
    data = docker_archive([(["app:v1"], [BASE])])
    with pytest.raises(InvalidArgument):
        svc.load(io.BytesIO(data[: len(data) // 2]))
    assert svc.list() == [] and not svc.leases.list()
    svc.gc()
    assert list(svc.content.walk()) == []


def test_import_rootfs(svc: ImageService) -> None:
    image_id = svc.import_rootfs(io.BytesIO(BASE), "imp:1", ["CMD [\"sh\"]", "ENV A=1"])
    rec = svc.get("imp:1")
    assert rec.labels[ID_LABEL] == image_id
    config = json.loads(svc.content.read(image_id))
    assert config["config"] == {"Cmd": ["sh"], "Env": ["A=1"]}
    assert config["rootfs"]["diff_ids"] == [digests.from_bytes(BASE)]


def test_cli_load_ls_save(tmp_path: str) -> None:
    root = os.path.join(str(tmp_path), "root")
    archive = os.path.join(str(tmp_path), "in.tar")
    with open(archive, "wb") as f:
        f.write(docker_archive([(["app:v1"], [BASE])]))
    cli = [sys.executable, "-m", "dockyard.supervisor", "--root", root, "images"]
    r = subprocess.run(cli + ["load", "-i", archive], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "Loaded image: app:v1\n", r.stderr
    r = subprocess.run(cli + ["ls", "-q"], capture_output=True, text=True)
    assert r.stdout.startswith("sha256:")
    out = os.path.join(str(tmp_path), "out.tar")
    assert subprocess.run(cli + ["save", "-o", out, "app:v1"]).returncode == 0
    r = subprocess.run(cli + ["rm", "nope:1"], capture_output=True, text=True)
    assert r.returncode == 1 and "No such image" in r.stderr


WH = layer_tar({"bin": None, "bin/.wh.sh": b"", "data": None, "data/.wh..wh..opq": b"", "data/b": b"b"})


@pytest.mark.parametrize("snapshotter", ["native", pytest.param("overlayfs", marks=pytest.mark.privileged)])
def test_unpack_commits_chain_ids_once_and_exports(svc: ImageService, snapshotter: str) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP, WH]), (["app:v2"], [BASE, TOP])])))
    top = svc.unpack("app:v1", snapshotter)
    sn = svc.snapshotter(snapshotter)
    before = {i.key for i in sn.walk()}
    assert top in before and len(before) == 3
    svc.unpack("app:v2", snapshotter)  # its two layers are already there
    assert {i.key for i in sn.walk()} == before
    key = "container-1"
    sn.prepare(key, top)
    out = io.BytesIO()
    svc.export(key, out, snapshotter)  # native: a bind mount, tarred in place (no root needed)
    assert sorted(tar_members(out.getvalue())) == ["bin", "data", "data/b"]
    sn.remove(key)
    assert not svc.leases.list()
    svc.remove("app:v2")
    result = svc.gc()  # app:v1 still holds every snapshot
    assert not result.removed_snapshots
    svc.remove("app:v1")
    svc.gc()
    assert list(sn.walk()) == []


def test_one_bad_image_names_none(svc: ImageService) -> None:
    import tarfile

    data = docker_archive([(["good:1"], [BASE]), (["bad:1"], [TOP])])
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            payload = f.read() if f else b""
            if payload == TOP:
                payload = TOP.replace(b"data/a", b"data/z")  # same size, other content: a wrong diff ID
            dst.addfile(m, io.BytesIO(payload) if m.isfile() else None)
    with pytest.raises(InvalidArgument, match="diff ID"):
        svc.load(io.BytesIO(buf.getvalue()))
    assert svc.list() == []


_CRASH_LOADER = """
import sys
from dockyard.supervisor.images import ImageService
with ImageService(sys.argv[1]) as svc:
    for i in range(1000):
        with open(sys.argv[2], "rb") as f:
            svc.load(f)
        svc.tag("app:v1", f"app:copy{i}")
"""


def test_load_killed_at_random_points_leaves_a_consistent_store(tmp_path: str) -> None:
    import random
    import signal
    import time

    root = os.path.join(str(tmp_path), "root")
    archive = os.path.join(str(tmp_path), "in.tar")
    big = layer_tar({"big": None, **{f"big/{i}": os.urandom(256 << 10) for i in range(8)}})
    with open(archive, "wb") as f:
        f.write(docker_archive([(["app:v1"], [BASE, big]), (["other:v1"], [TOP])]))
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _CRASH_LOADER, root, archive])
        time.sleep(rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ImageService(root) as svc:
            assert svc.metadata.integrity_check() == "ok"
            for record in svc.list():  # every named image is whole
                resolved = svc.resolve(record.name)
                for layer in resolved.layers:
                    assert svc.content.info(layer.digest).size == layer.size
            svc.leases.delete_expired()
            for lease in svc.leases.list():  # the killed load's lease: what a restarted daemon would drop
                svc.leases.delete(lease.id)
            svc.gc()
            names = {r.name for r in svc.list()}
            for record in svc.list():
                svc.resolve(record.name)
            assert not names or {"docker.io/library/app:v1", "docker.io/library/other:v1"} <= names
