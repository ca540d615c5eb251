"""Container paths seen from the host, for ``docker cp`` (the archive endpoints).

A container's filesystem is its rootfs plus mounts (volumes, binds): a
container path under a mount destination lives in the mount's host source.
Symlinks are followed in the scope of the container, as under chroot: an
absolute target restarts at the container's ``/``, ``..`` at ``/`` stays at
``/``; a path can never resolve to a host file outside the rootfs and mounts.
Also here: Docker's path spelling rules (a trailing ``/`` or ``/.`` is
meaningful), Go's ``os.FileMode`` bits and the path-stat header.
"""

from __future__ import annotations

import base64
import json
import os
import stat

from ...errors import InvalidArgument, NotFound
from .timefmt import rfc3339_nano

MAX_LINKS = 255

# Go's os.FileMode type bits
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20


def clean(path: str) -> str:
    """Go's path.Clean of an absolute container path ("/" for empty)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _current_dir(path: str) -> bool:
    """Go's specifiesCurrentDir: the last element (trailing slashes ignored) is '.'."""
    return go_base(path) == "."


def absolute(path: str) -> str:
    """The path made absolute and clean, keeping a trailing ``/`` or ``/.`` (PreserveTrailingDotOrSeparator)."""
    cleaned = clean("/" + path)
    if not _current_dir(cleaned) and _current_dir(path):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and path.endswith("/"):
        cleaned += "/"
    return cleaned


def go_base(path: str) -> str:
    """Go's filepath.Base: last element, trailing slashes ignored, "/" for the root."""
    stripped = path.rstrip("/")
    if stripped == "":
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


def split(path: str) -> tuple[str, str]:
    """Go's filepath.Split: (up to and including the last "/", the rest)."""
    i = path.rfind("/")
    return path[: i + 1], path[i + 1 :]


class ContainerFS:
    """Maps container paths to host paths through the rootfs and the mounts."""

    def __init__(self, rootfs: str, mounts: list[tuple[str, str]] | None = None) -> None:
        self.rootfs = rootfs.rstrip("/") or "/"
        pairs = [(clean(dest), src.rstrip("/") or "/") for dest, src in (mounts or [])]
        # longest destination first: a mount inside a mount wins
        self.mounts = sorted(pairs, key=lambda p: len(p[0]), reverse=True)
        self.dests = {dest for dest, _ in pairs}

    def mount_of(self, cpath: str) -> str | None:
        """The destination of the mount holding clean container path ``cpath``, if any."""
        for dest, _ in self.mounts:
            if dest == "/" or cpath == dest or cpath.startswith(dest + "/"):
                return dest
        return None

    def host(self, cpath: str) -> str:
        """Host path of a clean container path (no symlink is followed)."""
        for dest, src in self.mounts:
            if dest == "/" or cpath == dest or cpath.startswith(dest + "/"):
                rest = cpath[len(dest) :] if dest != "/" else cpath
                return src + rest if rest != "/" else src
        return self.rootfs if cpath == "/" else self.rootfs + cpath

    def resolve(self, cpath: str) -> str:
        """``cpath`` with every symlink followed inside the container (missing parts kept as named)."""
        todo = [p for p in cpath.split("/") if p not in ("", ".")]
        todo.reverse()
        resolved = "/"
        links = 0
        while todo:
            part = todo.pop()
            if part == "..":
                resolved = clean(resolved + "/..")
                continue
            nxt = clean(resolved + "/" + part)
            if nxt in self.dests:  # a mount point is what is mounted there, never a link
                resolved = nxt
                continue
            try:
                st = os.lstat(self.host(nxt))
            except (FileNotFoundError, NotADirectoryError):
                resolved = nxt
                continue
            if not stat.S_ISLNK(st.st_mode):
                resolved = nxt
                continue
            links += 1
            if links > MAX_LINKS:
                raise InvalidArgument(f"too many links in {cpath}", path=cpath)
            target = os.readlink(self.host(nxt))
            if target.startswith("/"):
                resolved = "/"
            todo.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
        return resolved

    def resolve_keep_last(self, abs_path: str) -> tuple[str, str]:
        """(resolved directory, last element) of an :func:`absolute` path, as Docker's ResolvePath.

        The last element ('' for a trailing '/', '.' for '/.') is not followed.
        """
        dir_part, base = split(abs_path)
        return self.resolve(dir_part), base


def not_found(path: str, name: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {name}", path=path)


def go_file_mode(st_mode: int) -> int:
    """A stat mode as Go's os.FileMode (permission bits plus Go's own type bits)."""
    mode = st_mode & 0o777
    fmt = stat.S_IFMT(st_mode)
    mode |= {
        stat.S_IFBLK: MODE_DEVICE,
        stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE,
        stat.S_IFDIR: MODE_DIR,
        stat.S_IFIFO: MODE_NAMED_PIPE,
        stat.S_IFLNK: MODE_SYMLINK,
        stat.S_IFSOCK: MODE_SOCKET,
    }.get(fmt, 0)
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def target_host_path(fs: ContainerFS, abs_path: str) -> tuple[str, str]:
    """(container path, host path) of the object an :func:`absolute` path names.

    A trailing '/' or '/.' follows a final symlink; otherwise it is the link itself.
    """
    rdir, base = fs.resolve_keep_last(abs_path)
    cpath = rdir if base in ("", ".") else clean(rdir + "/" + base)
    return cpath, fs.host(cpath)


def stat_path(rootfs: str, mounts: list[tuple[str, str]] | None, path: str, name: str = "") -> dict:
    """``ContainerPathStat`` of ``path`` in the container: name, size, mode, mtime, linkTarget.

    NotFound (``Could not find the file <path> in container <name>``) when missing.
    """
    fs = ContainerFS(rootfs, mounts)
    abs_path = absolute(path)
    _, host = target_host_path(fs, abs_path)
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(path, name) from None
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = fs.resolve(clean(abs_path))
    return {
        "name": go_base(abs_path),
        "size": st.st_size,
        "mode": go_file_mode(st.st_mode),
        "mtime": rfc3339_nano(st.st_mtime_ns),
        "linkTarget": link_target,
    }


def encode_stat(d: dict) -> str:
    """The ``X-Docker-Container-Path-Stat`` header: standard base64 of Go-style JSON."""
    text = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return base64.b64encode(text.encode()).decode()
