"""`docker commit` in the image service: a container's snapshot changes become a new image layer."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest

from dockyard.supervisor.images import ID_LABEL, ImageService
from tests.support.images import docker_archive, layer_tar, tar_members

BASE = layer_tar({"etc": None, "etc/keep": b"keep", "etc/gone": b"gone", "etc/edit": b"old"})


@pytest.fixture
def svc(tmp_path: str) -> Iterator[ImageService]:
    s = ImageService(os.path.join(str(tmp_path), "root"))
    yield s
    s.close()


@pytest.mark.parametrize("snapshotter", ["native", pytest.param("overlayfs", marks=pytest.mark.privileged)])
def test_commit_snapshot(svc: ImageService, tmp_path, snapshotter: str) -> None:
    svc.load(io.BytesIO(docker_archive([(["base:1"], [BASE])])))
    top = svc.unpack("base:1", snapshotter=snapshotter)
    sn = svc.snapshotter(snapshotter)
    sn.prepare("ctr-1", top)
    upper = sn.upper_dir("ctr-1")
    os.makedirs(os.path.join(upper, "etc"), exist_ok=True)  # overlayfs: the copied-up directory
    with open(os.path.join(upper, "etc", "new"), "w") as f:
        f.write("new")
    with open(os.path.join(upper, "etc", "edit"), "w") as f:
        f.write("changed")
    if snapshotter == "native":
        os.unlink(os.path.join(upper, "etc", "gone"))  # the upper dir is a full copy
    else:
        os.mknod(os.path.join(upper, "etc", "gone"), 0o600 | 0o020000, 0)  # overlayfs whiteout

    image_id = svc.commit("ctr-1", "app:committed", base="base:1", snapshotter=snapshotter,
                          changes=['CMD ["sh"]', "ENV A=b"], comment="snapshot", author="tester")
    rec = svc.get("app:committed")
    assert rec.labels[ID_LABEL] == image_id
    resolved = svc.resolve("app:committed")
    base = svc.resolve("base:1")
    assert resolved.diff_ids[:1] == base.diff_ids and len(resolved.diff_ids) == 2
    config = json.loads(svc.content.read(image_id))
    assert config["config"]["Cmd"] == ["sh"] and "A=b" in config["config"]["Env"]
    assert config["author"] == "tester" and config["history"][-1]["comment"] == "snapshot"
    layer = tar_members(svc.content.read(resolved.layers[-1].digest))
    assert {"etc/new", "etc/edit", "etc/.wh.gone"} <= set(layer)
    assert "etc/keep" not in layer

    # The committed image unpacks to the container's view, and saves/loads with the same ID.
    check = ImageService(os.path.join(str(tmp_path), "check"))
    try:
        out = io.BytesIO()
        svc.save(["app:committed"], out)
        check.load(io.BytesIO(out.getvalue()))
        top2 = check.unpack("app:committed", snapshotter="native")
        mounts = check.snapshotter("native").view("check", top2)
        assert len(mounts) == 1 and mounts[0].type == "bind"  # native snapshots are plain directories
        tree = mounts[0].source
        assert sorted(os.listdir(os.path.join(tree, "etc"))) == ["edit", "keep", "new"]
        with open(os.path.join(tree, "etc", "edit")) as f:
            assert f.read() == "changed"
    finally:
        check.close()
    out = io.BytesIO()
    svc.save(["app:committed"], out)
    other = ImageService(os.path.join(str(tmp_path), "other"))
    try:
        other.load(io.BytesIO(out.getvalue()))
        assert other.get("app:committed").labels[ID_LABEL] == image_id
    finally:
        other.close()
