"""docker cp support: container path resolution, stat header, tar out, extraction in."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile

import pytest

from dockyard.engine.daemon import archive
from dockyard.engine.daemon.archive_paths import ContainerFS, absolute, go_file_mode
from dockyard.errors import Forbidden, InvalidArgument, NotFound

ROOT = os.geteuid() == 0


@pytest.fixture
def box(tmp_path):  # type: ignore[no-untyped-def]
    """A rootfs with files, links (some hostile) and a volume mounted at /data."""
    rootfs = tmp_path / "rootfs"
    vol = tmp_path / "vol"
    for d in ("etc", "dir/sub", "data"):
        (rootfs / d).mkdir(parents=True)
    vol.mkdir()
    (rootfs / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    (rootfs / "dir/a.txt").write_text("hello")
    (rootfs / "dir/sub/b.txt").write_text("bee")
    os.link(rootfs / "dir/a.txt", rootfs / "dir/hard.txt")
    os.symlink("dir", rootfs / "dirlink")
    os.symlink("/etc", rootfs / "dir/abs-etc")
    os.symlink("../../../../../..", rootfs / "escape")
    (vol / "v.txt").write_text("volume")
    os.chmod(rootfs / "dir/a.txt", 0o4754)
    return str(rootfs), [("/data", str(vol))], tmp_path


def header(d: dict) -> dict:
    return json.loads(base64.b64decode(archive.encode_stat(d)))


def names(chunks) -> list[str]:  # type: ignore[no-untyped-def]
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as tf:
        return tf.getnames()


def members(chunks) -> dict[str, tuple[tarfile.TarInfo, bytes]]:  # type: ignore[no-untyped-def]
    out = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as tf:
        for ti in tf:
            f = tf.extractfile(ti) if ti.isreg() else None
            out[ti.name] = (ti, f.read() if f else b"")
    return out


def test_absolute_keeps_trailing_dot_and_slash() -> None:
    assert absolute("dir") == "/dir"
    assert absolute("/dir/") == "/dir/"
    assert absolute("/dir/.") == "/dir/."
    assert absolute("a/../b/./") == "/b/./"  # as Go's PreserveTrailingDotOrSeparator
    assert absolute("a/../b//") == "/b/"
    assert absolute(".") == "/."
    assert absolute("/") == "/"


def test_go_file_mode_bits() -> None:
    assert go_file_mode(0o040755) == (1 << 31) | 0o755
    assert go_file_mode(0o120777) == (1 << 27) | 0o777
    assert go_file_mode(0o104754) == (1 << 23) | 0o754
    assert go_file_mode(0o041777) == (1 << 31) | (1 << 20) | 0o777
    assert go_file_mode(0o020620) == (1 << 26) | (1 << 21) | 0o620


def test_stat_file_dir_and_header(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    st = archive.stat_path(rootfs, mounts, "/dir/a.txt", "web")
    assert st["name"] == "a.txt" and st["size"] == 5 and st["linkTarget"] == ""
    assert st["mode"] == (1 << 23) | 0o754
    assert st["mtime"].endswith("Z") and st["mtime"][:4].isdigit()
    assert header(st) == st
    d = archive.stat_path(rootfs, mounts, "dir/", "web")
    assert d["name"] == "dir" and d["mode"] & (1 << 31)
    assert archive.stat_path(rootfs, mounts, "/dir/.", "web")["name"] == "."
    assert archive.stat_path(rootfs, mounts, "/", "web")["name"] == "/"


def test_stat_header_is_go_json() -> None:
    raw = base64.b64decode(archive.encode_stat({"name": "a<b>&é", "size": 1})).decode()
    assert raw == '{"name":"a\\u003cb\\u003e\\u0026é","size":1}'


def test_stat_symlink_and_trailing_slash(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    link = archive.stat_path(rootfs, mounts, "/dirlink", "web")
    assert link["mode"] & (1 << 27) and link["linkTarget"] == "/dir"
    followed = archive.stat_path(rootfs, mounts, "/dirlink/", "web")
    assert followed["name"] == "dirlink" and followed["mode"] & (1 << 31) and followed["linkTarget"] == ""


def test_stat_not_found_message(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    with pytest.raises(NotFound, match="^Could not find the file /nope in container web$"):
        archive.stat_path(rootfs, mounts, "/nope", "web")
    with pytest.raises(NotFound):
        archive.stat_path(rootfs, mounts, "/dir/a.txt/x", "web")


def test_symlinks_never_escape_root(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    fs = ContainerFS(rootfs, mounts)
    assert fs.resolve("/escape") == "/"
    assert fs.resolve("/escape/etc/passwd") == "/etc/passwd"
    assert fs.resolve("/dir/abs-etc/passwd") == "/etc/passwd"
    assert fs.host(fs.resolve("/dir/abs-etc/passwd")) == rootfs + "/etc/passwd"
    assert archive.stat_path(rootfs, mounts, "/escape", "c")["linkTarget"] == "/"
    got = members(archive.tar_path(rootfs, mounts, "/dir/abs-etc/passwd", "c"))
    assert got["passwd"][1].startswith(b"root:x:0:0")  # the container's, not the host's


def test_mount_mapping(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, tmp = box
    st = archive.stat_path(rootfs, mounts, "/data/v.txt", "c")
    assert st["size"] == 6
    assert ContainerFS(rootfs, mounts).host("/data/v.txt") == str(tmp / "vol" / "v.txt")


def test_tar_directory(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    got = members(archive.tar_path(rootfs, mounts, "/dir", "c"))
    assert sorted(got) == sorted(["dir", "dir/a.txt", "dir/abs-etc", "dir/hard.txt", "dir/sub", "dir/sub/b.txt"])
    assert got["dir/a.txt"][1] == b"hello" and got["dir/a.txt"][0].mode == 0o4754
    assert got["dir/abs-etc"][0].issym() and got["dir/abs-etc"][0].linkname == "/etc"
    assert got["dir/hard.txt"][0].islnk() and got["dir/hard.txt"][0].linkname == "dir/a.txt"
    assert got["dir/sub"][0].isdir()
    raw = b"".join(archive.tar_path(rootfs, mounts, "/dir/sub", "c"))
    assert raw[:8] == b"sub/\x00\x00\x00\x00"  # directory names end with "/"
    assert len(raw) % 512 == 0 and raw.endswith(bytes(1024))


def test_tar_dot_rule_and_links(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    assert names(archive.tar_path(rootfs, mounts, "/dir/sub/.", "c")) == [".", "./b.txt"]
    # a final symlink is sent as the link unless the path ends with "/" or "/."
    assert names(archive.tar_path(rootfs, mounts, "/dirlink", "c")) == ["dirlink"]
    assert "dirlink/sub/b.txt" in names(archive.tar_path(rootfs, mounts, "/dirlink/", "c"))
    assert "./sub/b.txt" in names(archive.tar_path(rootfs, mounts, "/dirlink/.", "c"))


def test_tar_root_and_mount_contents(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    got = names(archive.tar_path(rootfs, mounts, "/", "c"))
    assert "/etc/passwd" in got and "/data/v.txt" in got  # the volume is walked, as mounted


def test_tar_not_found_raised_eagerly(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    with pytest.raises(NotFound, match="Could not find the file /missing in container c"):
        archive.tar_path(rootfs, mounts, "/missing", "c")


def make_tar(*entries: tuple[str, str, bytes | str]) -> io.BytesIO:
    """entries: (name, kind f|d|l|h, data or link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mtime, ti.mode = 4321, 8765, 1_600_000_000, 0o640
            if kind == "f":
                assert isinstance(data, bytes)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                continue
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o750
            elif kind in "lh":
                ti.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                ti.linkname = str(data)
            tf.addfile(ti)
    buf.seek(0)
    return buf


def test_roundtrip_through_tar(box, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    data = io.BytesIO(b"".join(archive.tar_path(rootfs, mounts, "/dir", "c")))
    os.mkdir(os.path.join(rootfs, "copy"))
    archive.extract_into(rootfs, mounts, "/copy", data, name="c")
    base = os.path.join(rootfs, "copy/dir")
    assert open(os.path.join(base, "sub/b.txt")).read() == "bee"
    assert os.stat(os.path.join(base, "a.txt")).st_mode & 0o7777 == 0o4754
    assert os.readlink(os.path.join(base, "abs-etc")) == "/etc"
    assert os.stat(os.path.join(base, "hard.txt")).st_ino == os.stat(os.path.join(base, "a.txt")).st_ino


def test_extract_preserves_owner_mode_mtime_and_makes_parents(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("new/deep/f", "f", b"x"), ("d2", "d", b"")), name="c")
    st = os.stat(os.path.join(rootfs, "dir/new/deep/f"))
    assert st.st_mode & 0o777 == 0o640 and st.st_mtime == 1_600_000_000
    assert os.stat(os.path.join(rootfs, "dir/new")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(rootfs, "dir/d2")).st_mtime == 1_600_000_000
    if ROOT:
        assert (st.st_uid, st.st_gid) == (4321, 8765)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_copy_uid_gid_uses_container_user(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("u", "f", b"x")), copy_uid_gid=True, user="app")
    st = os.lstat(os.path.join(rootfs, "dir/u"))
    assert (st.st_uid, st.st_gid) == (1234, 2345)
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("g", "f", b"x")), copy_uid_gid=True, user="app:staff")
    assert os.lstat(os.path.join(rootfs, "dir/g")).st_gid == 50
    with pytest.raises(NotFound, match="unable to find user ghost"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("g", "f", b"x")), copy_uid_gid=True, user="ghost")


def test_extract_rejects_dotdot_and_escaping_links(box, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    with pytest.raises(InvalidArgument, match="is outside of"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("../../evil", "f", b"x")))
    with pytest.raises(InvalidArgument, match="invalid symlink"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("l", "l", "../../..")))
    with pytest.raises(InvalidArgument, match="invalid hardlink"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("h", "h", "../etc/passwd")))
    assert not (tmp_path / "evil").exists()


def test_extract_through_symlinks_stays_in_container(box, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    host_target = tmp_path / "host-secret"
    os.symlink(str(host_target), os.path.join(rootfs, "dir/hostlink"))  # absolute: re-rooted in the container
    tar = make_tar(("abs", "l", "/tmpx"), ("abs/f", "f", b"in"), ("hostlink/g", "f", b"in2"), ("escape2", "l", "/"))
    archive.extract_into(rootfs, mounts, "/dir", tar)
    assert open(os.path.join(rootfs, "tmpx/f")).read() == "in"
    assert open(os.path.join(rootfs, str(host_target).lstrip("/"), "g")).read() == "in2"
    assert not host_target.exists()
    # the destination itself through the escaping link: resolves to the container root
    archive.extract_into(rootfs, mounts, "/escape", make_tar(("top", "f", b"t")))
    assert open(os.path.join(rootfs, "top")).read() == "t"


def test_extract_replaces_and_no_overwrite(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("a.txt", "f", b"new")))
    assert open(os.path.join(rootfs, "dir/a.txt")).read() == "new"
    # a symlink in the way is replaced, not written through
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("abs-etc", "f", b"file now")))
    assert not os.path.islink(os.path.join(rootfs, "dir/abs-etc"))
    assert os.path.exists(os.path.join(rootfs, "etc/passwd"))
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("sub", "f", b"x")), no_overwrite_dir_non_dir=True)
    with pytest.raises(InvalidArgument, match="cannot overwrite non-directory"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("a.txt", "d", b"")), no_overwrite_dir_non_dir=True)
    archive.extract_into(rootfs, mounts, "/dir", make_tar(("sub", "f", b"x")))
    assert open(os.path.join(rootfs, "dir/sub")).read() == "x"


def test_extract_destination_errors(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    with pytest.raises(NotFound, match="^Could not find the file /nope in container web$"):
        archive.extract_into(rootfs, mounts, "/nope", make_tar(), name="web")
    with pytest.raises(InvalidArgument, match="^extraction point is not a directory$"):
        archive.extract_into(rootfs, mounts, "/dir/a.txt", make_tar(), name="web")
    with pytest.raises(Forbidden, match="^container rootfs is marked read-only$"):
        archive.extract_into(rootfs, mounts, "/dir", make_tar(("x", "f", b"")), readonly_rootfs=True)
    with pytest.raises(Forbidden, match="^mounted volume is marked read-only$"):
        archive.extract_into(rootfs, mounts, "/data", make_tar(("x", "f", b"")), readonly_mounts=frozenset({"/data"}))
    # an entry reaching a read-only volume (or the read-only rootfs) through a link is refused too
    with pytest.raises(Forbidden, match="^mounted volume is marked read-only$"):
        archive.extract_into(rootfs, mounts, "/", make_tar(("data/y", "f", b"")), readonly_mounts=frozenset({"/data"}))
    os.symlink("/etc", os.path.join(box[2], "vol/to-root"))
    with pytest.raises(Forbidden, match="^container rootfs is marked read-only$"):
        archive.extract_into(rootfs, mounts, "/data", make_tar(("to-root/z", "f", b"")), readonly_rootfs=True)
    assert not os.path.exists(os.path.join(rootfs, "etc/z"))
    # a writable volume on a read-only rootfs is fine
    archive.extract_into(rootfs, mounts, "/data", make_tar(("x", "f", b"vx")), readonly_rootfs=True)
    assert open(os.path.join(box[2], "vol/x")).read() == "vx"


def test_extract_compressed_and_dot_entry(box) -> None:  # type: ignore[no-untyped-def]
    rootfs, mounts, _ = box
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ti = tarfile.TarInfo(".")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o700
        tf.addfile(ti)
        ti = tarfile.TarInfo("./z")
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"z"))
    buf.seek(0)
    before = os.stat(os.path.join(rootfs, "dir/sub")).st_mode
    archive.extract_into(rootfs, mounts, "/dir/sub", buf)
    assert open(os.path.join(rootfs, "dir/sub/z")).read() == "z"
    assert os.stat(os.path.join(rootfs, "dir/sub")).st_mode == before  # "." skipped
