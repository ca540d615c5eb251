"""The lean tar reader against tar formats found in the wild: GNU, pax, ustar, GNU tar's own output."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.layers import apply_layer
from dockyard.images.tarstream import TarReader

LONG = "d" * 120 + "/" + "f" * 150


def make(fmt: int, big_ids: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in ((LONG, b"long"), ("short", b"s")):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o640, 1_234_567_890
            if big_ids:
                ti.uid = ti.gid = 3_000_000
            tf.addfile(ti, io.BytesIO(data))
        ln = tarfile.TarInfo("l" * 120)
        ln.type, ln.linkname = tarfile.SYMTYPE, "t" * 130
        tf.addfile(ln)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names(tmp_path, fmt):
    raw = make(fmt)
    res = apply_layer(io.BytesIO(raw), str(tmp_path), whiteout_format="naive")
    assert res.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert open(tmp_path / LONG, "rb").read() == b"long"
    assert os.readlink(tmp_path / ("l" * 120)) == "t" * 130
    assert os.stat(tmp_path / "short").st_mtime == 1_234_567_890


def test_ustar_prefix_and_base256():
    raw = make(tarfile.GNU_FORMAT, big_ids=True)
    entries = []
    reader = TarReader(io.BytesIO(raw))
    while (e := reader.next()) is not None:
        entries.append((e.name, e.uid, e.size, e.mode))
    assert entries[0] == (LONG, 3_000_000, 4, 0o640)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        ti = tarfile.TarInfo("p" * 90 + "/" + "n" * 90)
        tf.addfile(ti)
    assert TarReader(io.BytesIO(buf.getvalue())).next().name == "p" * 90 + "/" + "n" * 90  # type: ignore[union-attr]


def test_pax_mtime_fraction_and_global_header(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "5"}) as tf:
        ti = tarfile.TarInfo("f")
        ti.mtime = 1_600_000_000.5
        tf.addfile(ti, io.BytesIO(b""))
    e = TarReader(io.BytesIO(buf.getvalue())).next()
    assert e is not None and e.mtime_ns == 1_600_000_000_500_000_000 and e.uid == 5


def test_bad_checksum_is_named(tmp_path):
    raw = bytearray(make(tarfile.PAX_FORMAT))
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tf:
        last = tf.getmembers()[-1].offset
    raw[last + 10] ^= 0x55  # inside the last member's first header
    with pytest.raises(InvalidArgument) as err:
        apply_layer(io.BytesIO(bytes(raw)), str(tmp_path), whiteout_format="naive")
    assert "checksum" in str(err.value) and "'short'" in str(err.value)


@pytest.mark.skipif(not shutil.which("tar"), reason="GNU tar not installed")
def test_matches_gnu_tar_extraction(tmp_path):
    src = tmp_path / "src"
    (src / "a" / ("x" * 100)).mkdir(parents=True)
    (src / "a" / ("x" * 100) / ("y" * 100)).write_bytes(os.urandom(70000))
    (src / "a" / "empty").write_bytes(b"")
    os.link(src / "a" / "empty", src / "hard")
    os.symlink("../a", src / "a" / "loop")
    os.setxattr(src / "hard", "user.test", b"1")
    tarball = tmp_path / "l.tar"
    subprocess.run(["tar", "--format=posix", "--xattrs", "--xattrs-include=*", "-cf", str(tarball), "-C", str(src),
                    "."], check=True)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    with open(tarball, "rb") as f:
        apply_layer(f, str(ours), whiteout_format="naive")
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", str(tarball), "-C", str(theirs)], check=True)

    def walk(root):
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                out[os.path.relpath(p, root)] = (st.st_mode, st.st_nlink, int(st.st_mtime),
                                                 os.listxattr(p, follow_symlinks=False))
        return out

    assert walk(ours) == walk(theirs)
