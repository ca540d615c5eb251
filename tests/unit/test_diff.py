"""changes() and write_layer() in the naive form (full trees; no root needed), and round trips."""

from __future__ import annotations

import io
import os
import tarfile

from dockyard.images.diff import Change, ChangeKind, changes, snapshot_changes, write_layer, write_snapshot_layer
from dockyard.images.layers import apply_layer
from dockyard.supervisor.snapshots import NativeSnapshotter
from dockyard.supervisor.snapshots.copy import copy_tree


def write(path: str, data: str, mtime: int = 1_600_000_000) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


def tree(root: str) -> dict[str, tuple[int, int, str]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = ""
            if os.path.islink(p):
                content = "->" + os.readlink(p)
            elif os.path.isfile(p):
                content = open(p).read()
            out[os.path.relpath(p, root)] = (st.st_mode, int(st.st_mtime) if not os.path.isdir(p) else 0, content)
    return out


def base_tree(root: str) -> None:
    write(f"{root}/etc/passwd", "root")
    write(f"{root}/etc/hosts", "localhost")
    write(f"{root}/var/lib/x/y", "deep")
    os.symlink("passwd", f"{root}/etc/link")


def test_naive_changes_and_round_trip(tmp_path):
    lower, upper, replay = str(tmp_path / "lower"), str(tmp_path / "upper"), str(tmp_path / "replay")
    for d in (lower, upper, replay):
        os.mkdir(d)
    base_tree(lower)
    copy_tree(lower, upper)
    copy_tree(lower, replay)
    write(f"{upper}/etc/passwd", "root\nuser", mtime=1_700_000_000)
    os.unlink(f"{upper}/etc/hosts")
    import shutil

    shutil.rmtree(f"{upper}/var/lib/x")
    write(f"{upper}/new/dir/file", "n")
    os.link(f"{upper}/new/dir/file", f"{upper}/new/hard")
    got = changes([lower], upper, form="naive")
    kinds = {c.path: c.kind.value for c in got}
    assert kinds == {"/etc/passwd": "C", "/etc/hosts": "D", "/var/lib/x": "D", "/new": "A",
                     "/new/dir": "A", "/new/dir/file": "A", "/new/hard": "A"}
    assert [c.path for c in got] == sorted(c.path for c in got)
    assert ChangeKind.DELETE.docker_code == 2 and ChangeKind.ADD.docker_code == 1

    buf = io.BytesIO()
    diff_id = write_layer(got, upper, buf, form="naive")
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        names = tf.getnames()
        assert "etc/.wh.hosts" in names and "var/lib/.wh.x" in names
        assert tf.getmember("new/hard").islnk() or tf.getmember("new/dir/file").islnk()
    res = apply_layer(io.BytesIO(buf.getvalue()), replay, whiteout_format="naive")
    assert res.diff_id == diff_id
    assert tree(replay) == tree(upper)


def test_diff_is_deterministic(tmp_path):
    upper = str(tmp_path / "u")
    os.mkdir(upper)
    write(f"{upper}/a", "1")
    ch = [Change("/a", ChangeKind.ADD), Change("/gone", ChangeKind.DELETE)]
    one, two = io.BytesIO(), io.BytesIO()
    assert write_layer(ch, upper, one, form="naive") == write_layer(ch, upper, two, form="naive")
    assert one.getvalue() == two.getvalue()


def test_snapshot_helpers_native(tmp_path):
    sn = NativeSnapshotter(str(tmp_path / "sn"))
    try:
        sn.prepare("base")
        base_tree(sn.upper_dir("base"))
        sn.commit("l1", "base")
        sn.prepare("c", "l1")
        write(os.path.join(sn.upper_dir("c"), "etc/new"), "x")
        os.unlink(os.path.join(sn.upper_dir("c"), "etc/hosts"))
        kinds = {c.path: c.kind.value for c in snapshot_changes(sn, "c")}
        assert kinds == {"/etc/new": "A", "/etc/hosts": "D"}
        out = io.BytesIO()
        assert write_snapshot_layer(sn, "c", out).startswith("sha256:")
    finally:
        sn.close()


def test_native_copy_preserves_metadata(tmp_path):
    src, dst = str(tmp_path / "s"), str(tmp_path / "d")
    os.mkdir(src)
    os.mkdir(dst)
    write(f"{src}/f", "data")
    os.chmod(f"{src}/f", 0o4750)
    os.setxattr(f"{src}/f", "user.k", b"v")
    os.link(f"{src}/f", f"{src}/h")
    os.symlink("f", f"{src}/l")
    os.mkfifo(f"{src}/p")
    os.utime(src, (1_000_000, 1_000_000))
    copy_tree(src, dst)
    assert tree(src) == tree(dst)
    assert os.stat(f"{dst}/f").st_ino == os.stat(f"{dst}/h").st_ino
    assert os.stat(f"{dst}/f").st_ino != os.stat(f"{src}/f").st_ino
    assert os.getxattr(f"{dst}/f", "user.k") == b"v"
    assert os.stat(dst).st_mtime == 1_000_000
