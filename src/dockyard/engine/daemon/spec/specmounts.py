"""The ``mounts`` array of the spec: defaults, init, user mounts, network files.

Follows dockerd's WithMounts: user mounts (with /etc/resolv.conf,
/etc/hostname, /etc/hosts and tmpfs mounts) sorted by depth; defaults that
a user mount covers are dropped; /dev/shm gets ShmSize; a read-only rootfs
makes the remaining defaults read-only; --privileged leaves /sys and the
cgroup mount writable.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from ....errors import InvalidArgument
from .defaults import INIT_PATH_IN_CONTAINER, default_mounts
from .mounts import DEFAULT_PROPAGATION, MountPoint

# mount(8) flags: option -> (key, sets); options with one key exclude each other.
_FLAG_KEYS = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev", "nodev": "nodev",
    "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync", "dirsync": "dirsync",
    "remount": "remount", "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "relatime": "relatime", "norelatime": "relatime",
    "strictatime": "strictatime", "nostrictatime": "strictatime",
}
_PROPAGATION_OPTS = ("bind", "rbind", "unbindable", "runbindable", "private", "rprivate",
                     "shared", "rshared", "slave", "rslave")
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
_KEEP_WRITABLE_ON_RO_ROOT = ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev")


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Deduplicate tmpfs options, the last one of each kind winning (moby's MergeTmpfsOptions)."""
    seen: set[str] = set()
    out: list[str] = []
    for opt in reversed(options):
        if opt == "defaults":
            continue
        if opt in _FLAG_KEYS or opt in _PROPAGATION_OPTS:
            key = "propagation" if opt in _PROPAGATION_OPTS else _FLAG_KEYS[opt]
        else:
            parts = opt.split("=", 1)
            if len(parts) != 2 or parts[0] not in _TMPFS_DATA:
                quoted = " ".join(f'"{p}"' for p in parts)
                raise InvalidArgument(f"Invalid tmpfs option [{quoted}]")
            key = "data:" + parts[0]
        if key not in seen:
            seen.add(key)
            out.insert(0, opt)
    return out


@dataclass(frozen=True)
class MountContext:
    """What, besides the mount points, decides the mounts array."""

    shm_size: int
    ipc_mode: str = "private"
    shm_path: str | None = None  # /dev/shm to bind (ipc host/container/shareable)
    readonly_rootfs: bool = False
    privileged: bool = False
    init_path: str | None = None
    network_files: tuple[tuple[str, str], ...] = ()  # (host path, container path)


def _user_entry(m: MountPoint) -> dict:
    """One user mount as an OCI mount; tmpfs gets nosuid,nodev,noexec unless overridden."""
    if m.type == "tmpfs":
        opts = merge_tmpfs_options(["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION, *m.tmpfs_options])
        return {"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}
    if not m.source:
        raise InvalidArgument(f"mount {m.destination}: the {m.type} source was not resolved to a host path")
    opts = ["bind" if m.non_recursive else "rbind"]
    if not m.rw:
        opts.append("ro")
    if m.propagation:
        opts.append(m.propagation)
    return {"destination": m.destination, "type": "bind", "source": m.source, "options": opts}


def _depth(dest: str) -> int:
    return posixpath.normpath(dest).count("/")


def user_mounts(mounts: list[MountPoint], ctx: MountContext) -> list[MountPoint]:
    """User mounts plus the network files not mounted over, sorted so parents come first."""
    taken = {m.destination for m in mounts}
    out = list(mounts)
    for host_path, dest in ctx.network_files:
        if host_path and dest not in taken and os.path.exists(host_path):
            out.append(MountPoint("bind", host_path, dest, rw=not ctx.readonly_rootfs,
                                  propagation=DEFAULT_PROPAGATION))
    if ctx.shm_path and "/dev/shm" not in taken and ctx.ipc_mode not in ("private", "none"):
        out.append(MountPoint("bind", ctx.shm_path, "/dev/shm", propagation=DEFAULT_PROPAGATION))
    return sorted(out, key=lambda m: _depth(m.destination))


def _defaults(taken: set[str], ctx: MountContext) -> list[dict]:
    out = []
    for m in default_mounts():
        dest = m["destination"]
        if dest in taken or ("/dev" in taken and dest.startswith("/dev/")):
            continue
        if dest == "/dev/shm":
            if ctx.ipc_mode == "none":
                continue
            m["options"].append(f"size={ctx.shm_size}")
        out.append(m)
    return out


def spec_mounts(mounts: list[MountPoint], ctx: MountContext) -> list[dict]:
    """The spec's mounts array (dockerd's WithCommonOptions init mount + WithMounts)."""
    users = user_mounts(mounts, ctx)
    taken = {m.destination for m in users}
    result = _defaults(taken, ctx)
    if ctx.init_path:
        result.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": ctx.init_path,
                       "options": ["bind", "ro"]})
    result += [_user_entry(m) for m in users]
    if ctx.readonly_rootfs:
        for m in result:
            if m["destination"] not in _KEEP_WRITABLE_ON_RO_ROOT and m["destination"] not in taken:
                if "ro" not in m["options"]:
                    m["options"].append("ro")
    if ctx.privileged:
        for m in result:
            if m["destination"] == "/sys" or m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"]
    return result


def _source_mount(path: str, mountinfo: str) -> tuple[str, str]:
    """(mount point, optional fields) of the mount holding ``path`` on the host."""
    real = os.path.realpath(path)
    best, fields = "", ""
    with open(mountinfo) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 7:
                continue
            point = parts[4].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fields = point, " ".join(parts[6: parts.index("-")])
    return best, fields


def rootfs_propagation(mounts: list[MountPoint], mountinfo: str = "/proc/self/mountinfo") -> str:
    """linux.rootfsPropagation that shared / slave binds need ("" when none do).

    A shared bind needs its source on a shared host mount and the rootfs
    shared; a slave bind needs a shared or slave source and the rootfs rslave.
    """
    result = ""
    for m in mounts:
        if m.type != "bind" or m.propagation not in ("shared", "rshared", "slave", "rslave"):
            continue
        point, fields = _source_mount(m.source, mountinfo)
        shared = any(f.startswith("shared:") for f in fields.split())
        if m.propagation in ("shared", "rshared"):
            if not shared:
                raise InvalidArgument(f"path {m.source} is mounted on {point} but it is not a shared mount")
            result = "shared"
        else:
            if not shared and not any(f.startswith("master:") for f in fields.split()):
                raise InvalidArgument(
                    f"path {m.source} is mounted on {point} but it is not a shared or slave mount")
            if result != "shared":
                result = "rslave"
    return result
