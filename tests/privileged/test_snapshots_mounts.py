"""Snapshotters for real: layers applied, mounts mounted, whiteouts honoured, diffs round-tripped.

The same scenario runs on the overlay and the native snapshotter; the merged
trees they present must be identical. Every mount is undone in ``finally``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
from typing import Iterator

import pytest

from dockyard.images.diff import snapshot_changes, write_snapshot_layer
from dockyard.images.layers import apply_layer
from dockyard.supervisor.snapshots import mount_all, open_snapshotter, unmount_all
from tests.unit.test_layers_tarbuild import E, build_tar, compress

pytestmark = pytest.mark.privileged

L1 = [E("etc", "d", mode=0o755), E("etc/passwd", data=b"root", uid=0), E("etc/hosts", data=b"hosts"),
      E("opt/a/old1", data=b"1"), E("opt/a/old2", data=b"2"), E("usr/bin/tool", data=b"t", mode=0o4755, uid=7, gid=8),
      E("dev/null", "c", mode=0o666, dev=(1, 3)), E("cap", data=b"c", xattrs={"security.capability": b"\x01\x00\x00\x02" + b"\x00" * 16})]
L2 = [E("etc/.wh.hosts"), E("opt/a", "d"), E("opt/a/.wh..wh..opq"), E("opt/a/new", data=b"n"),
      E("etc/passwd", data=b"root\nuser")]


def form(sn) -> str:
    return "overlay" if sn.name == "overlayfs" else "naive"


def unpack(sn, layers: list[list[E]]) -> str | None:
    parent = None
    for i, entries in enumerate(layers):
        key = f"extract-{i}"
        sn.prepare(key, parent)
        apply_layer(io.BytesIO(compress(build_tar(entries), "gzip")), sn.upper_dir(key), whiteout_format=form(sn))
        sn.commit(f"layer-{i}", key)
        parent = f"layer-{i}"
    return parent


@contextlib.contextmanager
def mounted(mounts, target: str) -> Iterator[str]:
    os.makedirs(target, exist_ok=True)
    mount_all(mounts, target)
    try:
        yield target
    finally:
        unmount_all(target, detach=True)


def snapshot_tree(root: str) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else b""
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_rdev, data)
    return out


@pytest.fixture(params=["overlayfs", "native"])
def sn(request, tmp_path):
    s = open_snapshotter(request.param, str(tmp_path / "sn"))
    yield s
    s.close()


def test_overlay_whiteout_form(tmp_path):
    t = str(tmp_path)
    apply_layer(io.BytesIO(build_tar(L2)), t, whiteout_format="overlay")
    st = os.lstat(f"{t}/etc/hosts")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(f"{t}/opt/a", "trusted.overlay.opaque") == b"y"
    assert os.listdir(f"{t}/opt/a") == ["new"]


def test_merged_view_after_whiteouts(sn, tmp_path):
    top = unpack(sn, [L1, L2])
    with mounted(sn.view("v", top), str(tmp_path / "mnt")) as root:
        assert not os.path.exists(f"{root}/etc/hosts")
        assert sorted(os.listdir(f"{root}/opt/a")) == ["new"]
        assert open(f"{root}/etc/passwd", "rb").read() == b"root\nuser"
        st = os.stat(f"{root}/usr/bin/tool")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 7, 8)
        assert os.stat(f"{root}/dev/null").st_rdev == os.makedev(1, 3)
        assert os.getxattr(f"{root}/cap", "security.capability")[:4] == b"\x01\x00\x00\x02"
        with pytest.raises(OSError):
            open(f"{root}/etc/new", "w")  # views are read-only


def test_both_snapshotters_show_the_same_tree(tmp_path):
    trees = []
    for name in ("overlayfs", "native"):
        s = open_snapshotter(name, str(tmp_path / name))
        try:
            top = unpack(s, [L1, L2])
            with mounted(s.view("v", top), str(tmp_path / f"mnt-{name}")) as root:
                trees.append(snapshot_tree(root))
        finally:
            s.close()
    assert trees[0] == trees[1]


def test_container_diff_and_commit_round_trip(sn, tmp_path):
    top = unpack(sn, [L1])
    with mounted(sn.prepare("ctr", top), str(tmp_path / "mnt")) as root:
        os.unlink(f"{root}/etc/hosts")
        shutil.rmtree(f"{root}/opt/a")
        os.makedirs(f"{root}/opt/a")
        open(f"{root}/opt/a/fresh", "w").write("f")
        open(f"{root}/etc/passwd", "a").write("\nnew")
        merged = snapshot_tree(root)
    kinds = {c.path: c.kind.value for c in snapshot_changes(sn, "ctr")}
    assert kinds["/etc/hosts"] == "D" and kinds["/etc/passwd"] == "C" and kinds["/opt/a/fresh"] == "A"
    assert "/opt/a/old1" not in kinds or kinds["/opt/a/old1"] == "D"
    out = io.BytesIO()
    diff_id = write_snapshot_layer(sn, "ctr", out)
    # The committed layer, applied on the base in a fresh stack, gives the container's tree.
    sn.prepare("replay", top)
    res = apply_layer(io.BytesIO(out.getvalue()), sn.upper_dir("replay"), whiteout_format=form(sn))
    assert res.diff_id == diff_id
    sn.commit("replayed", "replay")
    with mounted(sn.view("check", "replayed"), str(tmp_path / "mnt2")) as root:
        assert snapshot_tree(root) == merged


def test_mount_failure_leaves_nothing(tmp_path):
    from dockyard.supervisor.snapshots import Mount

    target = str(tmp_path / "t")
    os.mkdir(target)
    with pytest.raises(OSError):
        mount_all([Mount("bind", str(tmp_path), ("rbind",)), Mount("overlay", "overlay", ("lowerdir=/nonexistent",))],
                  target)
    assert not os.path.ismount(target)


def test_parallel_unpack_matches_native(tmp_path):
    import hashlib

    from dockyard.images.unpack import LayerSource, unpack_layers

    def src(entries: list[E]) -> LayerSource:
        raw = build_tar(entries)
        blob = compress(raw, "zstd")
        return LayerSource("sha256:" + hashlib.sha256(raw).hexdigest(), lambda: io.BytesIO(blob))

    layers = [src(L1), src(L2), src([E("opt/a", "d"), E("opt/a/.wh.new"), E("late", data=b"l")])]
    trees = []
    for name in ("overlayfs", "native"):
        s = open_snapshotter(name, str(tmp_path / name))
        try:
            top = unpack_layers(s, layers)
            with mounted(s.view("v", top), str(tmp_path / f"mnt-{name}")) as root:
                trees.append(snapshot_tree(root))
        finally:
            s.close()
    assert trees[0] == trees[1]
    assert "opt/a/new" not in trees[0] and "late" in trees[0] and "etc/hosts" not in trees[0]
