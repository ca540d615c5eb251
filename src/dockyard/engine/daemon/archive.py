"""``docker cp``: the tar a container path is sent as (GET archive), and stat.

Docker's naming rules (TarResourceRebase): the archive holds one top entry
named like the last element of the requested path, whatever a followed
symlink resolved to. ``/a/link`` sends the link itself; ``/a/link/`` sends
what it points to, named ``link``; ``/a/dir/.`` sends the directory with
names starting ``./`` (its contents, as the CLI expects); ``/`` sends names
starting ``/``. Directory names end with ``/``, mtimes are whole seconds,
sockets are skipped, hard links inside the archive become link entries.
Extraction (PUT archive) is :mod:`.archive_extract`.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator

from .archive_extract import extract_into
from .archive_paths import ContainerFS, absolute, clean, encode_stat, go_base, not_found, stat_path, target_host_path

__all__ = ["stat_path", "encode_stat", "tar_path", "extract_into"]

_BLOCK = 512
_CHUNK = 1 << 20


def _header(name: str, host: str, st: os.stat_result, links: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """The tar header of one file (None for a socket: Docker skips those)."""
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return None
    ti = tarfile.TarInfo(name + "/" if stat.S_ISDIR(mode) and not name.endswith("/") else name)
    ti.mode = stat.S_IMODE(mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    key = (st.st_dev, st.st_ino)
    if stat.S_ISREG(mode):
        if st.st_nlink > 1 and key in links:
            ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
            return ti
        if st.st_nlink > 1:
            links[key] = name
        ti.type, ti.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(host)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
    else:
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return ti


def _file_data(host: str, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of a file (zero-padded if it shrank), then tar padding."""
    left = size
    try:
        with open(host, "rb") as f:
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
    except OSError:
        pass
    if left > 0:
        yield bytes(left)
    if size % _BLOCK:
        yield bytes(_BLOCK - size % _BLOCK)


def _children(fs: ContainerFS, cpath: str, host: str) -> list[str]:
    """Names in a directory, mount points below it included, sorted like Go's Walk."""
    try:
        names = set(os.listdir(host))
    except OSError:
        names = set()
    prefix = cpath.rstrip("/") + "/"
    for dest, _ in fs.mounts:
        if dest.startswith(prefix) and "/" not in dest[len(prefix) :]:
            names.add(dest[len(prefix) :])
    return sorted(names)


def _walk(fs: ContainerFS, cpath: str, name: str, links: dict[tuple[int, int], str]) -> Iterator[bytes]:
    """Tar blocks for ``cpath`` (not followed if a symlink) and, for a directory, below it."""
    host = fs.host(cpath)
    try:
        st = os.stat(host) if cpath in fs.dests else os.lstat(host)  # a mount point shows what is mounted
    except OSError:
        return  # vanished while walking: skipped, as Docker does
    ti = _header(name, host, st, links)
    if ti is None:
        return
    yield ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if ti.type == tarfile.REGTYPE and ti.size:
        yield from _file_data(host, ti.size)
    if ti.type == tarfile.DIRTYPE:
        for child in _children(fs, cpath, host):
            yield from _walk(fs, clean(cpath + "/" + child), f"{name}/{child}" if name else f"/{child}", links)


def tar_path(rootfs: str, mounts: list[tuple[str, str]] | None, path: str, name: str = "") -> Iterator[bytes]:
    """The tar stream ``docker cp <container>:<path> -`` receives.

    Checks the path first (NotFound with Docker's message, raised by this
    call), then returns an iterator of tar chunks.
    """
    fs = ContainerFS(rootfs, mounts)
    abs_path = absolute(path)
    cpath, host = target_host_path(fs, abs_path)
    try:
        os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(path, name) from None
    rebase = go_base(abs_path)
    top = "" if rebase == "/" else rebase

    def stream() -> Iterator[bytes]:
        yield from _walk(fs, cpath, top, {})
        yield bytes(2 * _BLOCK)

    return stream()
