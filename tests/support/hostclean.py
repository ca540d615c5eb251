"""Finding and removing what a test daemon left on the host: processes, mounts, cgroups.

Everything a :class:`tests.support.dockerd.DockerDaemon` creates carries one
unique name, ``dockyard-interop-<owner pid>-<random>``:

    /tmp/<name>/                      the daemon's directory (data-root, exec-root, sockets)
    <cgroup mount>/<name>/            --cgroup-parent of every container (all hierarchies)
    <cgroup mount>/<name>/daemon/     dockerd, containerd and the shims (one hierarchy)

so leftovers are found by that name, by the daemon's private mount namespace,
and by command lines mentioning the directory; and leftovers of a run that was
killed outright are found by a dead owner pid (see :func:`sweep_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator

PREFIX = "dockyard-interop-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-[A-Za-z0-9_]+$")


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` is a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mountinfo(pid: int | str = "self") -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each mount, in mount order."""
    mounts = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            mounts.append((_unescape(fields[4]), rfields[0], rfields[2] if len(rfields) > 2 else ""))
    return mounts


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def mounts_under(root: str) -> list[str]:
    """Mount points at or below ``root`` in our mount namespace, deepest first."""
    points = [m for m, _, _ in mountinfo() if _under(m, root)]
    return sorted(set(points), key=lambda p: (p.count("/"), len(p)), reverse=True)


def unmount_under(root: str) -> list[str]:
    """Lazily unmount everything at or below ``root``; return what is still mounted."""
    for _ in range(5):
        points = mounts_under(root)
        if not points:
            return []
        for point in points:
            subprocess.run(["umount", "-n", "--lazy", point], capture_output=True, timeout=30)
    return mounts_under(root)


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    return sorted({m for m, fstype, _ in mountinfo() if fstype in ("cgroup", "cgroup2")})


def tracking_hierarchy() -> str | None:
    """The hierarchy in which the daemon's processes are tracked: v2 if unified, else v1 pids."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup"
    for point, fstype, options in mountinfo():
        if fstype == "cgroup" and "pids" in options.split(","):
            return point
    for point, fstype, options in mountinfo():
        if fstype == "cgroup2":
            return point
    return None


def _walk_dirs(top: str) -> Iterator[str]:
    """``top`` and its subdirectories, children before parents."""
    for dirpath, _, _ in sorted(os.walk(top), key=lambda t: t[0].count("/"), reverse=True):
        yield dirpath


def cgroup_dirs(name: str) -> list[str]:
    """Every existing cgroup directory named ``name`` at the top of a hierarchy, and below it."""
    found: list[str] = []
    for point in cgroup_mounts():
        top = os.path.join(point, name)
        if os.path.isdir(top):
            found.extend(_walk_dirs(top))
    return found


def _read_ints(path: str) -> set[int]:
    try:
        with open(path) as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


def thaw(dirs: Iterable[str]) -> None:
    """Thaw frozen cgroups (a paused container): a frozen task never dies of SIGKILL."""
    for d in dirs:
        for path, value in ((os.path.join(d, "freezer.state"), "THAWED"), (os.path.join(d, "cgroup.freeze"), "0")):
            if os.path.exists(path):
                try:
                    with open(path, "w") as f:
                        f.write(value)
                except OSError:
                    pass


def _mnt_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def find_processes(name: str, mnt_ns: str | None = None, needle: str | None = None) -> set[int]:
    """Processes in ``name``'s cgroups, in mount namespace ``mnt_ns``, or mentioning ``needle``."""
    me = os.getpid()
    spare = {me, os.getppid()}
    pids: set[int] = set()
    for d in cgroup_dirs(name):
        pids |= _read_ints(os.path.join(d, "cgroup.procs"))
    own_ns = _mnt_ns("self")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if mnt_ns is not None and mnt_ns != own_ns and _mnt_ns(pid) == mnt_ns:
            pids.add(pid)
        elif needle and needle in _cmdline(pid):
            pids.add(pid)
    return {pid for pid in pids - spare if not _zombie(pid)}


def kill_everything(name: str, mnt_ns: str | None = None, needle: str | None = None,
                    timeout: float = 15.0) -> set[int]:
    """SIGKILL every process :func:`find_processes` finds until none is left; return survivors."""
    deadline = time.monotonic() + timeout
    while True:
        thaw(cgroup_dirs(name))
        pids = find_processes(name, mnt_ns, needle)
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def remove_cgroups(name: str, timeout: float = 10.0) -> list[str]:
    """rmdir ``name``'s cgroup trees, children first; return directories that would not go."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for d in cgroup_dirs(name):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def remove_tree(root: str) -> list[str]:
    """Unmount then delete ``root``; refuse to delete while anything is still mounted below it."""
    left = unmount_under(root)
    if not left:
        shutil.rmtree(root, ignore_errors=True)
    return left


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(tmp_parent: str = "/tmp") -> list[str]:
    """Remove leftovers of earlier runs whose owner process is gone (a killed test run).

    Returns the names it cleaned. Runs of live owners (a parallel session) are
    left alone.
    """
    names: set[str] = set()
    for point in cgroup_mounts():
        try:
            names.update(e for e in os.listdir(point) if _NAME.match(e))
        except OSError:
            pass
    try:
        names.update(e for e in os.listdir(tmp_parent) if _NAME.match(e))
    except OSError:
        pass
    cleaned = []
    for name in sorted(names):
        match = _NAME.match(name)
        if match is None or _owner_alive(int(match.group(1))):
            continue
        base = os.path.join(tmp_parent, name)
        kill_everything(name, needle=base, timeout=5)
        remove_cgroups(name, timeout=2)
        if os.path.isdir(base):
            remove_tree(base)
        cleaned.append(name)
    return cleaned
