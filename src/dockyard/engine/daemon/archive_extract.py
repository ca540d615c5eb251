"""``PUT /containers/{id}/archive``: extracting a tar into a container directory.

Docker extracts under a chroot at the container's root, so here every
entry's parent is resolved in the container's scope (:class:`ContainerFS`):
symlinks in the archive or the container re-root at ``/`` and cannot reach
the host. Docker's rules kept: entry names are cleaned and must stay below
the destination (``"../x" is outside of "/dst"``), so must relative symlink
and hard link targets; an existing path is replaced unless both are
directories (``noOverwriteDirNonDir`` refuses dir <-> non-dir swaps); a
``.`` entry onto the existing destination is skipped; missing parents are
made 0755; owners come from the tar unless ``copyUIDGID`` maps everything to
the container user; directories get their mtimes last.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from typing import IO

from ...errors import DockyardError, Forbidden, InvalidArgument, NotFound
from .archive_paths import ContainerFS, absolute, clean, not_found

_CHUNK = 1 << 20


def _outside(entry: str, dest: str) -> InvalidArgument:
    return InvalidArgument(f"{entry!r} is outside of {dest!r}", path=entry)


def _below(path: str, dest: str) -> bool:
    return dest == "/" or path == dest or path.startswith(dest + "/")


def _join_in(dest: str, rel: str) -> str:
    """Lexical join the way Docker checks breakouts (``..`` may climb out, caught by the caller)."""
    out = dest.rstrip("/").split("/") if dest != "/" else [""]
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(out) > 1:
                out.pop()
            else:
                out.append("..")  # above the root: always outside
            continue
        out.append(part)
    return "/".join(out) or "/"


def _entries(fs: ContainerFS, filename: str) -> list[list[str]]:
    """The colon-separated lines of a container file (/etc/passwd, /etc/group); [] if unreadable."""
    try:
        with open(fs.host(fs.resolve(filename)), encoding="utf-8", errors="replace") as f:
            return [line.split(":") for line in f.read().splitlines() if line and not line.startswith("#")]
    except OSError:
        return []


def _find(rows: list[list[str]], key: str, numeric: bool) -> list[str] | None:
    """The first row whose name (or, for a number, id) is ``key``."""
    for row in rows:
        if len(row) >= 4 and (row[2] == key if numeric else row[0] == key):
            return row
    return None


def container_ids(fs: ContainerFS, user: str) -> tuple[int, int]:
    """(uid, gid) of a ``user[:group]`` spec from the container's /etc/passwd and /etc/group.

    A numeric user need not exist (its group is then 0); a name must.
    """
    name, _, group = user.partition(":")
    row = _find(_entries(fs, "/etc/passwd"), name, name.isdigit())
    if row is None and not name.isdigit():
        raise NotFound(f"unable to find user {name}: no matching entries in passwd file")
    uid = int(name) if name.isdigit() else int(row[2]) if row else 0
    gid = int(row[3]) if row is not None and row[3].isdigit() else 0
    if group:
        if group.isdigit():
            return uid, int(group)
        grow = _find(_entries(fs, "/etc/group"), group, False)
        if grow is None or not grow[2].isdigit():
            raise NotFound(f"unable to find group {group}: no matching entries in group file")
        gid = int(grow[2])
    return uid, gid


def _check_writable(fs: ContainerFS, cpath: str, readonly_rootfs: bool, readonly_mounts: frozenset[str]) -> None:
    mount = fs.mount_of(cpath)
    if mount is not None:
        if mount in readonly_mounts:
            raise Forbidden("mounted volume is marked read-only", path=cpath)
        return
    if readonly_rootfs:
        raise Forbidden("container rootfs is marked read-only", path=cpath)


class _Extractor:
    """Writes the entries of one archive below the container directory ``dest``."""

    def __init__(self, fs: ContainerFS, dest: str, no_overwrite: bool, ids: tuple[int, int] | None,
                 readonly: tuple[bool, frozenset[str]] = (False, frozenset())) -> None:
        self.fs = fs
        self.readonly = readonly
        self.dest = dest
        self.no_overwrite = no_overwrite
        self.ids = ids
        self.dir_times: list[tuple[str, int]] = []

    def parent(self, cpath: str) -> str:
        """Resolved container path of ``cpath``'s parent, created (0755) where missing."""
        parent = self.fs.resolve(clean(cpath + "/.."))
        host = self.fs.host(parent)
        if not os.path.lexists(host):
            grand = self.parent(parent)
            made = clean(grand + "/" + parent.rsplit("/", 1)[-1])
            os.mkdir(self.fs.host(made), 0o755)
            return made
        return parent

    def entry(self, tf: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        name = ti.name
        cpath = _join_in(self.dest, name)
        if not _below(cpath, self.dest):
            raise _outside(name, self.dest)
        if cpath == self.dest:
            if ti.isdir():
                return  # "." onto the existing destination
            raise InvalidArgument(f"cannot overwrite directory {self.dest!r} with non-directory {name!r}")
        base = cpath.rsplit("/", 1)[-1]
        target = clean(self.parent(cpath) + "/" + base)
        _check_writable(self.fs, target, *self.readonly)  # a link in the way may lead to another mount
        host = self.fs.host(target)
        if not self.replace(host, ti, name):
            return
        self.create(tf, ti, host, cpath)
        self.finish(ti, host)

    def replace(self, host: str, ti: tarfile.TarInfo, name: str) -> bool:
        """Clear the way for ``ti`` at ``host``; False when a merge of directories needs no create."""
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return True
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.no_overwrite and is_dir and not ti.isdir():
            raise InvalidArgument(f"cannot overwrite directory {host!r} with non-directory {name!r}")
        if self.no_overwrite and not is_dir and ti.isdir():
            raise InvalidArgument(f"cannot overwrite non-directory {host!r} with directory {name!r}")
        if is_dir and ti.isdir():
            return True
        if is_dir:
            shutil.rmtree(host)
        else:
            os.unlink(host)
        return True

    def create(self, tf: tarfile.TarFile, ti: tarfile.TarInfo, host: str, cpath: str) -> None:
        if ti.isdir():
            if not os.path.isdir(host):
                os.mkdir(host, 0o755)
        elif ti.isreg():
            src = tf.extractfile(ti)
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, _CHUNK)
        elif ti.issym():
            target = _join_in(clean(cpath + "/.."), ti.linkname) if not ti.linkname.startswith("/") else ""
            if target and not _below(target, self.dest):
                raise InvalidArgument(f"invalid symlink {cpath!r} -> {ti.linkname!r}")
            os.symlink(ti.linkname, host)
        elif ti.islnk():
            target = _join_in(self.dest, ti.linkname)
            if not _below(target, self.dest):
                raise InvalidArgument(f"invalid hardlink {target!r} -> {ti.linkname!r}")
            src_path = self.fs.host(clean(self.fs.resolve(clean(target + "/..")) + "/" + target.rsplit("/", 1)[-1]))
            os.link(src_path, host, follow_symlinks=False)
        elif ti.isfifo():
            os.mkfifo(host, 0o600)
        elif ti.ischr() or ti.isblk():
            kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK
            os.mknod(host, kind | 0o600, os.makedev(ti.devmajor, ti.devminor))
        else:
            return  # unknown types are skipped, as Docker does

    def finish(self, ti: tarfile.TarInfo, host: str) -> None:
        """Owner, mode, mtime (directories' mtimes wait for the end)."""
        uid, gid = self.ids if self.ids is not None else (ti.uid, ti.gid)
        try:
            os.lchown(host, uid, gid)
        except PermissionError:
            if os.geteuid() == 0:
                raise
        if ti.islnk() and os.path.islink(host):
            return  # a hard link to a symlink: nothing more to set
        if not ti.issym():
            os.chmod(host, ti.mode & 0o7777)
        if ti.isdir():
            self.dir_times.append((host, int(ti.mtime)))
        else:
            os.utime(host, (ti.mtime, ti.mtime), follow_symlinks=False)

    def done(self) -> None:
        for host, mtime in reversed(self.dir_times):
            os.utime(host, (mtime, mtime), follow_symlinks=False)


def extract_into(
    rootfs: str,
    mounts: list[tuple[str, str]] | None,
    path: str,
    tar_stream: IO[bytes],
    *,
    name: str = "",
    no_overwrite_dir_non_dir: bool = False,
    copy_uid_gid: bool = False,
    user: str = "",
    readonly_rootfs: bool = False,
    readonly_mounts: frozenset[str] = frozenset(),
) -> None:
    """Extract ``tar_stream`` (plain or compressed) into directory ``path`` of the container.

    ``path`` (a final symlink followed) must be an existing directory:
    NotFound ``Could not find the file <path> in container <name>``, else
    InvalidArgument ``extraction point is not a directory``. Forbidden when
    the target is on the read-only rootfs or a read-only mount (destinations
    in ``readonly_mounts``). ``copy_uid_gid`` owns everything by the
    container's ``user`` (resolved in its /etc/passwd; as-is when empty).
    """
    fs = ContainerFS(rootfs, mounts)
    dest = fs.resolve(clean(absolute(path)))
    try:
        st = os.lstat(fs.host(dest))
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(path, name) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument("extraction point is not a directory", path=path)
    readonly = (readonly_rootfs, frozenset(clean(m) for m in readonly_mounts))
    _check_writable(fs, dest, *readonly)
    ids = container_ids(fs, user) if copy_uid_gid and user else None
    ex = _Extractor(fs, dest, no_overwrite_dir_non_dir, ids, readonly)
    try:
        with tarfile.open(fileobj=tar_stream, mode="r|*") as tf:
            for ti in tf:
                ex.entry(tf, ti)
    except tarfile.TarError as e:
        raise InvalidArgument(f"Error processing tar file({e})") from e
    except OSError as e:
        if e.errno == errno.EROFS:
            raise Forbidden("container rootfs is marked read-only") from e
        raise DockyardError(f"extracting into {path}: {e}") from e
    ex.done()
