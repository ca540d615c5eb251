"""Container changes (A/C/D, `docker diff`) and writing them as a layer tar (`docker commit`).

Two forms, like whiteouts in `layers`. ``"overlay"``: ``upper`` is an overlayfs
upper directory; its entries are the changes, a 0:0 character device is a
deletion and a directory with ``trusted.overlay.opaque=y`` hides everything
below it in the lower layers (written as ``.wh..wh..opq``). ``"naive"``: upper
is a full tree (native snapshotter) compared with ``lower[0]``, the parent's
full tree, by type, mode, owner, size, mtime, device and link target.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import stat
import tarfile
from typing import BinaryIO, Iterator, Literal, Protocol

from .layers import OPAQUE, OPAQUE_XATTR, WHITEOUT_PREFIX

Form = Literal["overlay", "naive"]


class ChangeKind(str, enum.Enum):
    """Docker's change kinds; `docker_code` is the number the Engine API uses."""

    MODIFY = "C"
    ADD = "A"
    DELETE = "D"

    @property
    def docker_code(self) -> int:
        return {"C": 0, "A": 1, "D": 2}[self.value]


@dataclasses.dataclass(frozen=True)
class Change:
    """One changed path ("/etc/passwd") and how it changed."""

    path: str
    kind: ChangeKind


def changes(lower: list[str], upper: str, *, form: Form = "overlay") -> list[Change]:
    """The changes of ``upper`` against ``lower`` (top first), sorted by path."""
    out = list(_overlay(lower, upper) if form == "overlay" else _naive(lower[0] if lower else None, upper))
    out.sort(key=lambda c: c.path)
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _in_lower(lower: list[str], rel: str) -> os.stat_result | None:
    for layer in lower:
        st = _lstat(os.path.join(layer, rel))
        if st is not None:
            return None if _is_whiteout(st) else st
    return None


def _overlay(lower: list[str], upper: str) -> Iterator[Change]:
    stack: list[tuple[str, bool]] = [("", False)]
    while stack:
        rel, hidden = stack.pop()
        with os.scandir(os.path.join(upper, rel)) as it:
            entries = list(it)
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            st = e.stat(follow_symlinks=False)
            if _is_whiteout(st):
                yield Change("/" + child, ChangeKind.DELETE)
                continue
            below = None if hidden else _in_lower(lower, child)
            is_dir = stat.S_ISDIR(st.st_mode)
            opaque = is_dir and _is_opaque(e.path)
            if below is None:
                yield Change("/" + child, ChangeKind.ADD)
            elif not (is_dir and not opaque and _same_dir(st, below)):
                yield Change("/" + child, ChangeKind.MODIFY)
            if is_dir:
                stack.append((child, hidden or opaque))


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (stat.S_ISDIR(b.st_mode) and a.st_mode == b.st_mode and a.st_uid == b.st_uid
            and a.st_gid == b.st_gid and a.st_mtime_ns == b.st_mtime_ns)


def _differs(a: os.stat_result, b: os.stat_result, apath: str, bpath: str) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, b.st_uid, b.st_gid, b.st_rdev):
        return True
    if stat.S_ISDIR(a.st_mode):
        return False  # a directory's size and mtime follow its children; those are reported themselves
    if a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns:
        return True
    return stat.S_ISLNK(a.st_mode) and os.readlink(apath) != os.readlink(bpath)


def _naive(lower: str | None, upper: str) -> Iterator[Change]:
    stack = [""]
    while stack:
        rel = stack.pop()
        up = os.path.join(upper, rel)
        low = os.path.join(lower, rel) if lower is not None else None
        names = set(os.listdir(up))
        low_names = set(os.listdir(low)) if low is not None and os.path.isdir(low) else set()
        for name in sorted(low_names - names):
            yield Change("/" + (f"{rel}/{name}" if rel else name), ChangeKind.DELETE)
        for name in sorted(names):
            child = f"{rel}/{name}" if rel else name
            st = os.lstat(os.path.join(up, name))
            old = _lstat(os.path.join(low, name)) if low is not None and name in low_names else None
            if old is None:
                yield Change("/" + child, ChangeKind.ADD)
            elif _differs(st, old, os.path.join(up, name), os.path.join(low or "", name)):
                yield Change("/" + child, ChangeKind.MODIFY)
            if stat.S_ISDIR(st.st_mode):
                if old is not None and stat.S_ISDIR(old.st_mode):
                    stack.append(child)
                else:
                    yield from _all_added(upper, child)


def _all_added(upper: str, rel: str) -> Iterator[Change]:
    for dirpath, dirnames, filenames in os.walk(os.path.join(upper, rel)):
        base = os.path.relpath(dirpath, upper)
        for name in dirnames + filenames:
            yield Change(f"/{base}/{name}", ChangeKind.ADD)


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)


def write_layer(changes: list[Change], upper: str, out: BinaryIO, *, form: Form = "overlay") -> str:
    """Write ``changes`` (files read from ``upper``) to ``out`` as a layer tar; return its diff ID.

    Deletions become ``.wh.<name>`` entries; in the overlay form opaque
    directories get a ``.wh..wh..opq`` entry. Times are truncated to seconds,
    as Docker does, so the same change set gives the same diff ID.
    """
    sink = _HashingWriter(out)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tf:
        for change in sorted(changes, key=lambda c: c.path):
            rel = change.path.lstrip("/")
            if change.kind is ChangeKind.DELETE:
                parent, _, base = rel.rpartition("/")
                ti = tarfile.TarInfo((parent + "/" if parent else "") + WHITEOUT_PREFIX + base)
                ti.mode = 0
                tf.addfile(ti)
                continue
            _add(tf, upper, rel, links, form)
    return "sha256:" + sink.hash.hexdigest()


def _add(tf: tarfile.TarFile, upper: str, rel: str, links: dict[tuple[int, int], str], form: Form) -> None:
    path = os.path.join(upper, rel)
    st = os.lstat(path)
    if stat.S_ISSOCK(st.st_mode) or (form == "overlay" and _is_whiteout(st)):
        return
    ti = tarfile.TarInfo(rel)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    ti.pax_headers = _xattrs(path)
    key = (st.st_dev, st.st_ino)
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in links:
        ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
        tf.addfile(ti)
        return
    if stat.S_ISREG(st.st_mode):
        links.setdefault(key, rel)
        ti.size = st.st_size
        with open(path, "rb") as f:
            tf.addfile(ti, f)
        return
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    tf.addfile(ti)
    if ti.type == tarfile.DIRTYPE and form == "overlay" and _is_opaque(path):
        opq = tarfile.TarInfo(f"{rel}/{OPAQUE}")
        opq.mode, opq.mtime = 0, ti.mtime
        tf.addfile(opq)


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if name.startswith("trusted.overlay.") or name == "security.selinux":
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def snapshot_changes(snapshotter: "SnapshotterLike", key: str) -> list[Change]:
    """`docker diff` of the active snapshot ``key``."""
    form: Form = "overlay" if snapshotter.name == "overlayfs" else "naive"
    return changes(snapshotter.parents(key), snapshotter.upper_dir(key), form=form)


def write_snapshot_layer(snapshotter: "SnapshotterLike", key: str, out: BinaryIO) -> str:
    """`docker commit`'s layer: the changes of active snapshot ``key`` as a tar on ``out``; its diff ID."""
    form: Form = "overlay" if snapshotter.name == "overlayfs" else "naive"
    return write_layer(snapshot_changes(snapshotter, key), snapshotter.upper_dir(key), out, form=form)


class SnapshotterLike(Protocol):
    """What the snapshot helpers need (supervisor.snapshots.BaseSnapshotter provides it)."""

    name: str

    def parents(self, key: str) -> list[str]: ...

    def upper_dir(self, key: str) -> str: ...
