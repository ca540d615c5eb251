"""unpack_layers: chain-ID naming, identical stacks once, parallel commit order, cleanup on error."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.unpack import LayerSource, unpack_layers
from dockyard.oci.image import chain_ids
from dockyard.supervisor.snapshots import Kind, open_snapshotter
from tests.unit.test_layers_tarbuild import E, build_tar, compress


def source(entries: list[E], *, wrong_id: bool = False) -> LayerSource:
    raw = build_tar(entries)
    blob = compress(raw, "gzip")
    diff_id = "sha256:" + hashlib.sha256(b"x" if wrong_id else raw).hexdigest()
    return LayerSource(diff_id, lambda: io.BytesIO(blob), name="blob")


LAYERS = [[E("a", "d", mode=0o755), E("a/1", data=b"1")], [E("b", data=b"2" * 100_000)], [E("c", data=b"3")]]


@pytest.fixture(params=["overlayfs", "native"])
def sn(request, tmp_path):
    s = open_snapshotter(request.param, str(tmp_path / "sn"))
    yield s
    s.close()


def test_unpack_names_snapshots_by_chain_id(sn):
    layers = [source(e) for e in LAYERS]
    top = unpack_layers(sn, layers)
    chains = chain_ids([layer.diff_id for layer in layers])
    assert top == chains[-1]
    infos = {i.key: i for i in sn.walk()}
    assert set(infos) == set(chains)
    assert all(i.kind is Kind.COMMITTED for i in infos.values())
    assert [infos[c].parent for c in chains] == [None, chains[0], chains[1]]
    # Identical stacks are unpacked once; a longer stack reuses the shared bottom.
    assert unpack_layers(sn, layers) == top
    more = unpack_layers(sn, layers[:2] + [source([E("d", data=b"4")])])
    assert len(list(sn.walk())) == 4 and sn.stat(more).parent == chains[1]
    if sn.name == "native":
        view = sn.view("v", top)
        assert sorted(os.listdir(view[0].source)) == ["a", "b", "c"]


def test_bad_diff_id_leaves_nothing(sn):
    layers = [source(LAYERS[0]), source(LAYERS[1], wrong_id=True), source(LAYERS[2])]
    with pytest.raises(InvalidArgument) as err:
        unpack_layers(sn, layers)
    assert "blob" in str(err.value)
    keys = [i.key for i in sn.walk()]
    assert all(not k.startswith("extract-") for k in keys)
    assert os.listdir(os.path.join(sn.root, "tmp")) == []


def test_empty(sn):
    assert unpack_layers(sn, []) == ""


def test_native_cannot_rebase(tmp_path):
    s = open_snapshotter("native", str(tmp_path / "n"))
    try:
        s.prepare("a")
        s.commit("base", "a")
        s.prepare("b")
        with pytest.raises(InvalidArgument):
            s.commit("c", "b", parent="base")
    finally:
        s.close()


def test_concurrent_unpacks_of_the_same_image(sn):
    import threading

    layers = [source(e) for e in LAYERS]
    other = open_snapshotter(sn.name, sn.root)  # a second opener, as another process would be
    results: list[str] = []
    errors: list[BaseException] = []

    def run(s) -> None:
        try:
            results.append(unpack_layers(s, layers))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in (sn, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert not errors and len(set(results)) == 1
    assert {i.key for i in sn.walk()} == set(chain_ids([layer.diff_id for layer in layers]))
