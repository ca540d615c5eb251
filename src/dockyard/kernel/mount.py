"""Mounting a list of mounts (as a snapshotter returns them) onto one target, and undoing it.

Options follow mount(8): flags ("ro", "nosuid", "rbind", ...) become mount(2)
flags, everything else ("lowerdir=...", "index=off") is filesystem data. A bind
mount with flags is made in two steps, since bind ignores them the first time.
"""

from __future__ import annotations

import errno
import os
from typing import Protocol, Sequence

from . import consts as c
from . import libc

_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, c.MS_RDONLY), "rw": (True, c.MS_RDONLY), "bind": (False, c.MS_BIND),
    "rbind": (False, c.MS_BIND | c.MS_REC), "nosuid": (False, c.MS_NOSUID), "suid": (True, c.MS_NOSUID),
    "nodev": (False, c.MS_NODEV), "dev": (True, c.MS_NODEV), "noexec": (False, c.MS_NOEXEC),
    "exec": (True, c.MS_NOEXEC), "noatime": (False, c.MS_NOATIME), "relatime": (False, c.MS_RELATIME),
    "strictatime": (False, c.MS_STRICTATIME), "nodiratime": (False, c.MS_NODIRATIME),
    "sync": (False, c.MS_SYNCHRONOUS), "async": (True, c.MS_SYNCHRONOUS), "defaults": (False, 0),
}
# overlayfs takes at most a page of options.
MAX_DATA = os.sysconf("SC_PAGESIZE") - 1


class MountLike(Protocol):
    """What `mount_all` needs of a mount (dockyard.supervisor.snapshots.Mount)."""

    @property
    def type(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def options(self) -> tuple[str, ...]: ...


def parse_options(options: Sequence[str]) -> tuple[int, str]:
    """(mount flags, comma-joined filesystem data) of mount(8)-style options."""
    flags = 0
    data = []
    for opt in options:
        known = _FLAGS.get(opt)
        if known is None:
            data.append(opt)
        elif known[0]:
            flags &= ~known[1]
        else:
            flags |= known[1]
    return flags, ",".join(data)


def mount_one(m: MountLike, target: str) -> None:
    """mount(2) ``m`` on ``target``; OSError on failure."""
    flags, data = parse_options(m.options)
    if len(data) > MAX_DATA:
        raise OSError(errno.E2BIG, f"mount options of {target} exceed a page ({len(data)} bytes)", target)
    if m.type == "bind" or flags & c.MS_BIND:
        bind = c.MS_BIND | (flags & c.MS_REC)
        libc.mount(m.source, target, None, bind)
        rest = flags & ~(c.MS_BIND | c.MS_REC)
        if rest:
            libc.mount(None, target, None, c.MS_REMOUNT | c.MS_BIND | rest)
        return
    libc.mount(m.source, target, m.type, flags, data or None)


def mount_all(mounts: Sequence[MountLike], target: str) -> None:
    """Mount each of ``mounts`` on ``target`` in order; on failure undo the ones made."""
    done = 0
    try:
        for m in mounts:
            mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            libc.umount2(target, c.MNT_DETACH)
        raise


def unmount_all(target: str, *, detach: bool = False) -> None:
    """Unmount everything stacked on ``target`` (nothing mounted is fine)."""
    flags = c.MNT_DETACH if detach else 0
    while True:
        try:
            libc.umount2(target, flags)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return
            raise


def is_mountpoint(path: str) -> bool:
    """Whether something is mounted on ``path`` (bind mounts on the same filesystem included)."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mount_point = line.split(" ", 5)[4]
                if mount_point.encode().decode("unicode_escape") == target:
                    return True
    except OSError:
        return False
    return False
