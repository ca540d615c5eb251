"""One conformance suite for every snapshotter (record-level; mounting is in tests/privileged)."""

from __future__ import annotations

import os

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.supervisor.snapshots import Kind, Mount, open_snapshotter

NAMES = ["overlayfs", "native"]


@pytest.fixture(params=NAMES)
def sn(request, tmp_path):
    s = open_snapshotter(request.param, str(tmp_path / "sn"))
    yield s
    s.close()


def write(path: str, data: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


def committed(sn, name: str, files: dict[str, str], parent: str | None = None) -> None:
    key = f"tmp-{name}"
    sn.prepare(key, parent)
    for rel, data in files.items():
        write(os.path.join(sn.upper_dir(key), rel), data)
    sn.commit(name, key)


def test_prepare_without_parent_is_a_bind_mount(sn):
    mounts = sn.prepare("a")
    assert len(mounts) == 1 and mounts[0].type == "bind"
    assert mounts[0].source == sn.upper_dir("a") and "rw" in mounts[0].options
    info = sn.stat("a")
    assert (info.key, info.kind, info.parent) == ("a", Kind.ACTIVE, None)
    assert sn.mounts("a") == mounts


def test_commit_and_stack(sn):
    committed(sn, "l1", {"etc/one": "1"}, labels := None)
    assert sn.stat("l1").kind is Kind.COMMITTED
    with pytest.raises(NotFound):
        sn.stat("tmp-l1")
    committed(sn, "l2", {"etc/two": "2"}, "l1")
    mounts = sn.prepare("c", "l2", labels={"x": "y"})
    assert sn.stat("c").parent == "l2" and sn.stat("c").labels == {"x": "y"}
    assert all(isinstance(m, Mount) for m in mounts)
    if sn.name == "overlayfs":
        (m,) = mounts
        assert m.type == "overlay"
        opts = dict(o.split("=", 1) for o in m.options if "=" in o)
        lowers = opts["lowerdir"].split(":")
        assert len(lowers) == 2 and os.path.exists(os.path.join(lowers[0], "etc/two"))
        assert opts["upperdir"] == sn.upper_dir("c")
        assert len(sn.parents("c")) == 2
    else:
        (m,) = mounts
        assert m.type == "bind"
        up = sn.upper_dir("c")
        assert open(os.path.join(up, "etc/one")).read() == "1"
        assert open(os.path.join(up, "etc/two")).read() == "2"
    _ = labels


def test_view(sn):
    committed(sn, "l1", {"f": "1"})
    committed(sn, "l2", {"g": "2"}, "l1")
    v1 = sn.view("v1", "l1")
    assert sn.stat("v1").kind is Kind.VIEW
    assert "ro" in v1[0].options or v1[0].type == "overlay"
    v2 = sn.view("v2", "l2")
    assert v2[0].type in ("overlay", "bind")
    with pytest.raises(InvalidArgument):
        sn.upper_dir("v1")
    with pytest.raises(Conflict):
        sn.commit("nope", "v1")


def test_errors(sn):
    with pytest.raises(NotFound):
        sn.stat("missing")
    with pytest.raises(NotFound):
        sn.prepare("x", "missing-parent")
    sn.prepare("a")
    with pytest.raises(Conflict):
        sn.prepare("a")
    with pytest.raises(InvalidArgument):
        sn.prepare("b", "a")  # parent must be committed
    committed(sn, "l1", {})
    sn.prepare("c")
    with pytest.raises(Conflict):
        sn.commit("l1", "c")  # name taken
    assert sn.stat("c").kind is Kind.ACTIVE
    with pytest.raises(InvalidArgument):
        sn.mounts("l1")


def test_remove_refuses_parents(sn):
    committed(sn, "l1", {"f": "x"})
    sn.prepare("c", "l1")
    with pytest.raises(Conflict):
        sn.remove("l1")
    sn.remove("c")
    sn.remove("l1")
    assert list(sn.walk()) == []
    with pytest.raises(NotFound):
        sn.remove("l1")
    assert os.listdir(os.path.join(sn.root, "snapshots")) == []


def test_walk_and_usage(sn):
    committed(sn, "l1", {"f": "x" * 10000})
    sn.prepare("c", "l1")
    write(os.path.join(sn.upper_dir("c"), "g"), "y" * 5000)
    keys = {i.key: i.kind for i in sn.walk()}
    assert keys == {"l1": Kind.COMMITTED, "c": Kind.ACTIVE}
    size, inodes = sn.usage("l1")
    assert size >= 10000 and inodes == 1
    usage = sn.usage("c")
    assert usage.size >= 5000 and usage.inodes >= 1


def test_state_survives_reopen(sn, tmp_path):
    committed(sn, "l1", {"f": "x"})
    sn.prepare("c", "l1")
    root, name = sn.root, sn.name
    sn.close()
    os.makedirs(os.path.join(root, "snapshots", "999"))  # a crashed prepare's leftover
    os.makedirs(os.path.join(root, "tmp", "new-xyz"))
    again = open_snapshotter(name, root)
    try:
        assert {i.key for i in again.walk()} == {"l1", "c"}
        assert not os.path.exists(os.path.join(root, "snapshots", "999"))
        assert os.listdir(os.path.join(root, "tmp")) == []
        assert again.stat("c").parent == "l1"
    finally:
        again.close()
    sn.store = open_snapshotter(name, root).store  # the fixture closes it


def test_commit_keeps_content_and_labels(sn):
    sn.prepare("a", labels={"k": "v"})
    write(os.path.join(sn.upper_dir("a"), "x/y"), "z")
    sn.commit("c1", "a")
    assert sn.stat("c1").labels == {"k": "v"}
    sn.prepare("b")
    sn.commit("c2", "b", labels={"n": "1"})
    assert sn.stat("c2").labels == {"n": "1"}
    v = sn.prepare("d", "c1")
    if sn.name == "native":
        assert open(os.path.join(v[0].source, "x/y")).read() == "z"


def test_unknown_snapshotter(tmp_path):
    with pytest.raises(InvalidArgument):
        open_snapshotter("zfs", str(tmp_path))
