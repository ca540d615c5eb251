"""apply_layer: formats, metadata, naive whiteouts and hostile input (no root needed)."""

from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.compression import Compression, detect
from dockyard.images.layers import apply_layer
from tests.unit.test_layers_tarbuild import E, build_tar, compress

ROOT = os.geteuid() == 0


def sample() -> list[E]:
    return [
        E("etc", "d", mode=0o755, mtime=1_500_000_000),
        E("etc/passwd", data=b"root:x:0:0\n", mode=0o644, uid=1000, gid=1000),
        E("bin/", "d", mode=0o755),
        E("bin/tool", data=b"\x7fELF" + b"x" * 3_000_000, mode=0o4755),
        E("bin/sh", "l", link="tool"),
        E("bin/tool2", "h", link="bin/tool"),
        E("./tmp", "d", mode=0o1777),
        E("tmp/fifo", "p", mode=0o600),
        E("etc/attr", data=b"x", xattrs={"user.dockyard": b"v\xff1"}),
        E("usr/lib/deep/file", data=b"deep"),  # parents not listed: created
    ]


@pytest.mark.parametrize("how", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("threaded", [True, False])
def test_apply_preserves_everything(tmp_path, how, threaded):
    raw = build_tar(sample())
    blob = compress(raw, how)
    res = apply_layer(io.BytesIO(blob), str(tmp_path), whiteout_format="naive", threaded=threaded)
    assert res.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert res.size == len(raw)
    assert res.compressed_digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    t = str(tmp_path)
    assert open(f"{t}/etc/passwd", "rb").read() == b"root:x:0:0\n"
    assert os.path.getsize(f"{t}/bin/tool") == 3_000_004
    st = os.stat(f"{t}/bin/tool")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.lstat(f"{t}/bin/tool2").st_ino == st.st_ino
    assert os.readlink(f"{t}/bin/sh") == "tool"
    assert stat.S_IMODE(os.stat(f"{t}/tmp").st_mode) == 0o1777
    assert stat.S_ISFIFO(os.lstat(f"{t}/tmp/fifo").st_mode)
    assert os.stat(f"{t}/etc").st_mtime == 1_500_000_000
    assert os.stat(f"{t}/etc/passwd").st_mtime == 1_600_000_000
    assert open(f"{t}/usr/lib/deep/file", "rb").read() == b"deep"
    assert os.getxattr(f"{t}/etc/attr", "user.dockyard") == b"v\xff1"
    if ROOT:
        assert (os.stat(f"{t}/etc/passwd").st_uid, os.stat(f"{t}/etc/passwd").st_gid) == (1000, 1000)


def test_detect():
    assert detect(b"\x1f\x8b\x08") is Compression.GZIP
    assert detect(b"\x28\xb5\x2f\xfd") is Compression.ZSTD
    assert detect(b"etc/\x00") is Compression.NONE


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_multi_member_streams(tmp_path, how):
    raw = build_tar(sample())
    blob = compress(raw[:5000], how) + compress(raw[5000:], how)
    res = apply_layer(io.BytesIO(blob), str(tmp_path), whiteout_format="naive")
    assert res.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_naive_whiteouts(tmp_path):
    t = str(tmp_path)
    for d in ("gone", "opq", "keep"):
        os.makedirs(f"{t}/{d}/sub")
        open(f"{t}/{d}/old", "w").close()
    open(f"{t}/file", "w").close()
    layer = build_tar([E("gone/.wh.old"), E(".wh.file"), E("opq", "d"), E("opq/new", data=b"n"),
                       E("opq/implicit/x", data=b"x"), E("opq/.wh..wh..opq"), E(".wh.keep2")])
    apply_layer(io.BytesIO(layer), t, whiteout_format="naive")
    assert os.listdir(f"{t}/gone") == ["sub"]
    assert not os.path.exists(f"{t}/file")
    assert sorted(os.listdir(f"{t}/opq")) == ["implicit", "new"]
    assert sorted(os.listdir(f"{t}/keep")) == ["old", "sub"]
    assert not any(n.startswith(".wh.") for n in os.listdir(t))


def test_replaces_existing_entries(tmp_path):
    t = str(tmp_path)
    os.makedirs(f"{t}/a/b")
    os.symlink("/etc/passwd", f"{t}/link")
    layer = build_tar([E("a", data=b"now a file"), E("link", data=b"plain")])
    apply_layer(io.BytesIO(layer), t, whiteout_format="naive")
    assert open(f"{t}/a", "rb").read() == b"now a file"
    assert not os.path.islink(f"{t}/link") and open(f"{t}/link", "rb").read() == b"plain"


def test_symlink_inside_root_is_followed(tmp_path):
    layer = build_tar([E("usr/lib", "d", mode=0o755), E("lib", "l", link="usr/lib"), E("lib/x", data=b"x")])
    apply_layer(io.BytesIO(layer), str(tmp_path), whiteout_format="naive")
    assert open(f"{tmp_path}/usr/lib/x", "rb").read() == b"x"


BAD = {
    "absolute": [E("/etc/passwd", data=b"x")],
    "dotdot": [E("a/../../escape", data=b"x")],
    "symlink-abs": [E("evil", "l", link="/tmp"), E("evil/owned", data=b"x")],
    "symlink-rel": [E("d", "d"), E("d/evil", "l", link="../../.."), E("d/evil/owned", data=b"x")],
    "hardlink-out": [E("h", "h", link="../outside")],
    "hardlink-abs": [E("h", "h", link="/etc/passwd")],
    "hardlink-missing": [E("h", "h", link="nothere")],
    "device": [E("dev/sda", "b", dev=(8, 0))],
    "whiteout-dotdot": [E(".wh...")],
    "whiteout-dot": [E("d", "d", mode=0o755), E("d/.wh..")],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_rejects_hostile_entries(tmp_path, case):
    entries = BAD[case]
    target = tmp_path / "root"
    target.mkdir()
    with pytest.raises(InvalidArgument) as err:
        apply_layer(io.BytesIO(build_tar(entries)), str(target), whiteout_format="naive", allow_devices=False)
    assert repr(entries[-1].name) in str(err.value)
    assert err.value.path == entries[-1].name
    assert os.listdir(tmp_path) == ["root"]  # nothing written next to the root


@pytest.mark.parametrize("how", ["gzip", "zstd", "none"])
def test_truncated_layers(tmp_path, how):
    raw = build_tar(sample())
    blob = compress(raw, how)
    cut = blob[: len(blob) // 2] if how != "none" else raw[: 3 * 512 + 700]
    with pytest.raises(InvalidArgument) as err:
        apply_layer(io.BytesIO(cut), str(tmp_path), whiteout_format="naive")
    assert "entry" in str(err.value) or "truncated" in str(err.value)


def test_corrupt_gzip_names_entry(tmp_path):
    raw = build_tar(sample())
    blob = bytearray(compress(raw, "gzip"))
    blob[len(blob) // 2] ^= 0xFF
    blob[len(blob) // 2 + 1] ^= 0xFF
    with pytest.raises(InvalidArgument) as err:
        apply_layer(io.BytesIO(bytes(blob)), str(tmp_path), whiteout_format="naive")
    assert "entry" in str(err.value)


def test_unknown_whiteout_format(tmp_path):
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(b""), str(tmp_path), whiteout_format="aufs")  # type: ignore[arg-type]


def test_directory_replaced_by_symlink_gets_no_late_chmod(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    os.chmod(outside / "sub", 0o755)
    target = tmp_path / "root"
    target.mkdir()
    layer = build_tar([E("d", "d", mode=0o755), E("d/sub", "d", mode=0o777, mtime=5),
                       E("d", "l", link=str(outside))])
    apply_layer(io.BytesIO(layer), str(target), whiteout_format="naive")
    assert os.readlink(target / "d") == str(outside)
    st = os.stat(outside / "sub")
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_mtime != 5
