"""Copying a tree with everything a layer holds: owners, modes, xattrs, hardlinks, devices, mtimes.

Used by the native snapshotter. File data goes through copy_file_range (which
reflinks on filesystems that can), falling back to a read/write loop.
"""

from __future__ import annotations

import errno
import os
import stat


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents of directory ``src`` into the existing directory ``dst``."""
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    st = os.lstat(src)
    _copy_dir(src, dst, links, dirs)
    _meta(src, dst, st)
    for path, dst_st in reversed(dirs):
        os.utime(path, ns=(dst_st.st_atime_ns, dst_st.st_mtime_ns))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_dir(src: str, dst: str, links: dict[tuple[int, int], str],
              dirs: list[tuple[str, os.stat_result]]) -> None:
    with os.scandir(src) as it:
        entries = list(it)
    for e in entries:
        s, d = e.path, os.path.join(dst, e.name)
        st = e.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            _copy_dir(s, d, links, dirs)
            _meta(s, d, st)
            dirs.append((d, st))
            continue
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            first = links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(first, d, follow_symlinks=False)
                continue
            links[(st.st_dev, st.st_ino)] = d
        if stat.S_ISREG(mode):
            _copy_file(s, d)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(d, stat.S_IFMT(mode) | 0o600, st.st_rdev)
        _meta(s, d, st)
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            try:
                while os.copy_file_range(fin, fout, 1 << 30):
                    pass
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                while data := os.read(fin, 1 << 20):
                    os.write(fout, data)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _meta(src: str, dst: str, st: os.stat_result) -> None:
    """Owner, xattrs and mode (in that order: chown clears setuid)."""
    if os.geteuid() == 0:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
