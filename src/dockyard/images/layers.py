"""Apply a layer tar (plain, gzip, zstd) onto a directory, with whiteouts.

`apply_layer` streams: the blob is decompressed and hashed in a reader thread
(see `compression`), entries are written with os-level calls (one open, one
write loop, fchown/fchmod/futimens on the fd), and directory modes and mtimes
are set last so that their content does not disturb them.

Whiteouts have two forms. ``"overlay"``: the target is an overlayfs upper
directory, so ``.wh.<name>`` becomes a 0:0 character device ``<name>`` and
``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its directory (both
need root). ``"naive"``: the target is a full copy of the parent (the native
snapshotter), so whiteouts delete what they name.

Nothing here makes the result visible: the caller applies into an active
snapshot and commits it only when `apply_layer` returned (see `unpack`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import stat
from typing import BinaryIO, Callable, Literal

from ..errors import InvalidArgument, Unavailable
from .compression import CorruptStream, LayerStream
from .tarsafe import Resolver, clean_name
from .tarstream import BLK, CHR, DIR, FIFO, LNK, SYM, Entry, TarReader

WhiteoutFormat = Literal["overlay", "naive"]

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
_O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# The host refusing (full, read-only, not permitted) rather than the layer being bad.
_RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EMFILE, errno.ENFILE,
                              errno.EPERM})


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """What applying a layer learned: its diff ID, uncompressed size and blob digest."""

    diff_id: str
    size: int
    compressed_digest: str


def apply_layer(stream: BinaryIO, target: str, *, whiteout_format: WhiteoutFormat = "overlay",
                allow_devices: bool = True, threaded: bool = True) -> LayerResult:
    """Extract the layer blob ``stream`` into the existing directory ``target``.

    Raises InvalidArgument naming the entry for hostile or corrupt input, and
    Unavailable when the host refuses (disk full, read-only). On error the
    target is left half-written: it must be a scratch directory (an active
    snapshot) that the caller discards.
    """
    if whiteout_format not in ("overlay", "naive"):
        raise InvalidArgument(f"unknown whiteout format {whiteout_format!r}")
    layer = LayerStream(stream, threaded=threaded)
    applier = _Applier(target, whiteout_format, allow_devices)
    try:
        applier.run(layer)
        try:
            diff_id, size, compressed = layer.finish()
        except CorruptStream as e:
            raise InvalidArgument(f"corrupt layer after entry {applier.last!r}: {e}", path=applier.last) from e
    finally:
        layer.close()
    return LayerResult(diff_id, size, compressed)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777  # unknown: always chmod


class _Applier:
    """One extraction: the per-entry handlers and the deferred directory metadata."""

    def __init__(self, target: str, whiteouts: WhiteoutFormat, allow_devices: bool) -> None:
        self.target = target
        self.overlay = whiteouts == "overlay"
        self.allow_devices = allow_devices
        self.root = os.geteuid() == 0
        self.umask = _umask()
        self.resolver = Resolver(target)
        self.created: set[str] = set()
        self.dirs: list[tuple[str, int, int]] = []
        self.last = "<start of archive>"

    def run(self, layer: LayerStream) -> None:
        """Apply every entry of the tar read from ``layer``."""
        reader = TarReader(layer)
        try:
            while True:
                try:
                    m = reader.next()
                except CorruptStream as e:
                    raise InvalidArgument(f"corrupt layer after entry {self.last!r}: {e}", path=self.last) from e
                if m is None:
                    return
                name = self.last = m.name
                try:
                    self.entry(reader, m)
                except CorruptStream as e:
                    raise InvalidArgument(f"corrupt layer at entry {name!r}: {e}", path=name) from e
                except OSError as e:
                    cls = Unavailable if e.errno in _RESOURCE_ERRNOS else InvalidArgument
                    raise cls(f"layer entry {name!r}: {e.strerror or e}", path=name) from e
        finally:
            self.finish_dirs()

    def finish_dirs(self) -> None:
        """Modes and mtimes of directories, last; through O_NOFOLLOW fds, never via a symlink."""
        for path, mode, mtime in reversed(self.dirs):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced by a later entry
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)

    def entry(self, reader: TarReader, m: Entry) -> None:
        rel = clean_name(m.name)
        parent_rel, _, base = rel.rpartition("/")
        if not rel:
            self.metadata(self.target, m, is_dir=True)
            return
        parent = self.resolver.directory(parent_rel, m.name)
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, base, m)
            return
        path = parent + "/" + base
        if m.isreg():
            self.regular(reader, m, path)
        elif m.type == DIR:
            self.directory(m, path)
        elif m.type == SYM:
            self.make(path, lambda: os.symlink(m.linkname, path))
            self.metadata(path, m)
        elif m.type == LNK:
            self.hardlink(m, path)
        elif m.type in (CHR, BLK):
            if not self.allow_devices:
                raise InvalidArgument(f"layer entry {m.name!r}: device nodes are not allowed here", path=m.name)
            kind = stat.S_IFCHR if m.type == CHR else stat.S_IFBLK
            self.make(path, lambda: os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor)))
            self.metadata(path, m)
        elif m.type == FIFO:
            self.make(path, lambda: os.mkfifo(path, 0o600))
            self.metadata(path, m)
        else:
            raise InvalidArgument(f"layer entry {m.name!r}: unsupported tar type {m.type!r}", path=m.name)
        self.created.add(path)

    def make(self, path: str, create: Callable[[], None]) -> None:
        """Create ``path``, replacing whatever non-directory (or directory) was there."""
        try:
            create()
        except FileExistsError:
            self.remove(path)
            create()

    def remove(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.resolver.forget()
            inside = path + "/"
            self.dirs = [d for d in self.dirs if d[0] != path and not d[0].startswith(inside)]
        else:
            os.unlink(path)

    def regular(self, reader: TarReader, m: Entry, path: str) -> None:
        # Created with its final mode when umask lets it through: one fchmod less per file.
        mode = m.mode & 0o777
        try:
            fd = os.open(path, _O_CREATE, mode)
        except FileExistsError:
            self.remove(path)
            fd = os.open(path, _O_CREATE, mode)
        try:
            while data := reader.read(CHUNK):
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            self.metadata(fd, m, chmod=m.mode != mode or mode & self.umask != 0)
        finally:
            os.close(fd)

    def directory(self, m: Entry, path: str) -> None:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                self.remove(path)
                os.mkdir(path, 0o700)
        self.metadata(path, m, is_dir=True)

    def hardlink(self, m: Entry, path: str) -> None:
        src_rel = clean_name(m.linkname, m.name)
        src_parent, _, src_base = src_rel.rpartition("/")
        if not src_base:
            raise InvalidArgument(f"layer entry {m.name!r}: hardlink to the root", path=m.name)
        src = self.resolver.directory(src_parent, m.name, create=False) + "/" + src_base
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            raise InvalidArgument(f"layer entry {m.name!r}: hardlink target {m.linkname!r} does not exist",
                                  path=m.name) from None
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"layer entry {m.name!r}: hardlink to a directory", path=m.name)
        if src == path:
            return
        self.make(path, lambda: os.link(src, path, follow_symlinks=False))

    def whiteout(self, parent: str, base: str, m: Entry) -> None:
        if base == OPAQUE:
            if self.overlay:
                os.setxattr(parent, OPAQUE_XATTR, b"y", follow_symlinks=False)
                return
            for child in os.listdir(parent):
                host = parent + "/" + child
                if host not in self.created and host not in self.resolver.made:
                    self.remove(host)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"layer entry {m.name!r}: whiteout of {name!r} not allowed", path=m.name)
        path = parent + "/" + name
        self.remove(path)
        if self.overlay:
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            if self.root:
                os.lchown(path, m.uid, m.gid)

    def metadata(self, where: int | str, m: Entry, *, is_dir: bool = False, chmod: bool = True) -> None:
        """Ownership, mode, xattrs and mtime of the entry (directories: mode and mtime deferred)."""
        link = m.type == SYM
        if self.root:
            if isinstance(where, int):
                os.fchown(where, m.uid, m.gid)
            else:
                os.chown(where, m.uid, m.gid, follow_symlinks=False)
        for key, value in m.xattrs.items():
            self.xattr(where, key, value, m)
        mtime = m.mtime_ns
        if is_dir:
            assert isinstance(where, str)
            self.dirs.append((where, m.mode, mtime))
            return
        if chmod and not link:
            if isinstance(where, int):
                os.fchmod(where, m.mode)
            else:
                os.chmod(where, m.mode)
        if isinstance(where, int):
            os.utime(where, ns=(mtime, mtime))
        else:
            os.utime(where, ns=(mtime, mtime), follow_symlinks=False)

    def xattr(self, where: int | str, key: str, value: bytes, m: Entry) -> None:
        try:
            if isinstance(where, int):
                os.setxattr(where, key, value)
            else:
                os.setxattr(where, key, value, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or (e.errno == errno.EPERM and not self.root):
                return  # Docker too skips xattrs the filesystem or an unprivileged user cannot hold
            raise
