"""Where a container's cgroup lives: ``cgroupsPath`` resolution, as runc does it.

On the host, cgroup v1 looks like this (systemd's layout; a controller may
share a hierarchy with another, e.g. ``cpu,cpuacct`` with two symlinks)::

    /sys/fs/cgroup/                 tmpfs
        cpu,cpuacct/  memory/  ...  one cgroup (v1) mount per hierarchy
        cpu -> cpu,cpuacct          symlinks for combined hierarchies
        systemd/                    named hierarchy (name=systemd), no controller
        unified/                    cgroup2, on "hybrid" hosts only

and cgroup v2 is a single cgroup2 mount at ``/sys/fs/cgroup``.

runc's cgroupfs driver, followed here exactly:

* ``cgroupsPath`` is cleaned first (``..`` cannot climb above the root).
* Empty: the container id is used as a *relative* path.
* Absolute (v1): ``<root>/<mount dir name>/<path>`` for each hierarchy.
* Relative (v1): ``<mountpoint>/<the runtime's own cgroup in that
  hierarchy>/<path>`` -- per hierarchy, from ``/proc/self/cgroup``, made
  relative to the mount's root (nested containers). The hybrid cgroup2
  hierarchy is the exception: relative paths start at its root.
* Absolute (v2): ``<root>/<path>``.
* Relative (v2): ``<root>/<parent of the runtime's own cgroup>/<path>`` (the
  parent, because the runtime's own cgroup usually holds processes, so no
  controller could be enabled below it).

Mount discovery reads ``/proc/self/mountinfo`` at most once per process (v1
only; v2 needs no mount table). Tests point ``MOUNTINFO`` and ``PROC_CGROUP``
at fake files and call :func:`reset`.
"""

from __future__ import annotations

from ...errors import InvalidArgument, NotFound, Unavailable
from . import files

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"

# The v1 hierarchies runc manages, in the order it applies and sets them.
# "name=systemd" and "" (the hybrid cgroup2 hierarchy) are only joined.
V1_SUBSYSTEMS = (
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
    "",
)

_mounts_cache: list[tuple[str, str, str, list[str]]] | None = None
_own_cache: dict[str, str] | None = None


def reset() -> None:
    """Forget the cached mount table and own cgroups (tests only)."""
    global _mounts_cache, _own_cache
    _mounts_cache = None
    _own_cache = None


def clean(path: str) -> str:
    """Lexically clean a path like Go's filepath.Clean (no leading ``//``)."""
    if path == "":
        return "."
    absolute = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not absolute:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if absolute:
        return "/" + joined
    return joined or "."


def clean_cgroups_path(path: str) -> str:
    """runc's CleanPath: a relative path may not escape with ``..``."""
    if path == "":
        return ""
    path = clean(path)
    if not path.startswith("/"):
        path = clean("/" + path)[1:] or "."
    return path


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The cleaned cgroup path of a container (the id when none is given)."""
    if cgroups_path and not cgroups_path.startswith("/") and cgroups_path.count(":") == 2:
        raise Unavailable(
            f"cgroupsPath {cgroups_path!r} looks like a systemd slice:prefix:name path; "
            "the systemd cgroup driver is not supported (use a cgroupfs path)"
        )
    inner = clean_cgroups_path(cgroups_path or "")
    if inner == "":
        if not container_id:
            raise InvalidArgument("a cgroup path or a container id is required")
        inner = clean_cgroups_path(container_id)
    return inner


def join(*parts: str) -> str:
    """Join and clean path parts (``join("/a", "/b")`` is ``/a/b``)."""
    return clean("/".join(p for p in parts if p != ""))


def relpath(base: str, target: str) -> str:
    """``target`` relative to ``base`` (both absolute, cleaned)."""
    b = [p for p in base.split("/") if p]
    t = [p for p in target.split("/") if p]
    i = 0
    while i < len(b) and i < len(t) and b[i] == t[i]:
        i += 1
    rel = [".."] * (len(b) - i) + t[i:]
    return "/".join(rel) or "."


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str, str, list[str]]]:
    """The cgroup mounts of a mountinfo table, in order.

    Each is ``(fstype, mountpoint, mount root, super options)``; fstype is
    "cgroup" or "cgroup2".
    """
    out = []
    for line in text.splitlines():
        if " cgroup" not in line:
            continue
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        rfields = right.split(" ")
        if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        lfields = left.split(" ")
        if len(lfields) < 5:
            continue
        out.append((rfields[0], _unescape(lfields[4]), _unescape(lfields[3]), rfields[2].split(",")))
    return out


def cgroup_mounts() -> list[tuple[str, str, str, list[str]]]:
    """The process's cgroup mounts (mountinfo is read once per process)."""
    global _mounts_cache
    if _mounts_cache is None:
        try:
            text = files.read_raw(MOUNTINFO)
        except OSError as e:
            raise Unavailable(f"cannot read {MOUNTINFO}: {e.strerror}") from e
        _mounts_cache = parse_mountinfo(text)
    return _mounts_cache


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as {subsystem: path}; the v2 entry has key ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) < 3:
            raise InvalidArgument(f"invalid cgroup entry {line!r}: must contain at least two colons")
        for sub in parts[1].split(","):
            out[sub] = parts[2]
    return out


def own_cgroups() -> dict[str, str]:
    """The runtime's own cgroups, read once per process."""
    global _own_cache
    if _own_cache is None:
        try:
            text = files.read_raw(PROC_CGROUP)
        except OSError as e:
            raise Unavailable(f"cannot read {PROC_CGROUP}: {e.strerror}") from e
        _own_cache = parse_proc_cgroup(text)
    return _own_cache


def _mount_for(subsystem: str, prefix: str) -> tuple[str, str] | None:
    """(mountpoint, mount root) of the first v1 mount holding ``subsystem``."""
    for fstype, mountpoint, mroot, opts in cgroup_mounts():
        if fstype == "cgroup" and mountpoint.startswith(prefix) and subsystem in opts:
            return mountpoint, mroot
    return None


def _hybrid_mount(root: str) -> str | None:
    unified = join(root, "unified")
    for fstype, mountpoint, _mroot, _opts in cgroup_mounts():
        if fstype == "cgroup2" and mountpoint == unified:
            return mountpoint
    return None


def v1_paths(root: str, inner: str) -> tuple[dict[str, str], dict[str, str]]:
    """The per-subsystem cgroup dirs of ``inner`` and their hierarchy dirs.

    The second dict maps each subsystem to the hierarchy's top dir that its
    path starts with (the mountpoint, or ``<root>/<mount dir name>``).

    Subsystems that are not mounted are left out; ``devices`` must be there
    (without it nothing would restrict device access).
    """
    paths: dict[str, str] = {}
    mounts: dict[str, str] = {}
    absolute = inner.startswith("/")
    own = None if absolute else own_cgroups()
    for sub in V1_SUBSYSTEMS:
        if sub == "":
            mnt = _hybrid_mount(root)
            if mnt is None:
                continue
            path = join(mnt, inner)
        else:
            found = _mount_for(sub, root if absolute else "")
            if found is None:
                continue
            mnt, mroot = found
            if absolute:
                mnt = join(root, mnt.rsplit("/", 1)[-1])
                path = join(mnt, inner)
            else:
                assert own is not None
                mine = own.get(sub)
                if mine is None:
                    continue
                path = join(mnt, relpath(mroot, mine), inner)
        paths[sub] = path
        mounts[sub] = mnt
    if "devices" not in paths:
        raise Unavailable("the devices cgroup is not mounted: refusing to run a container without it")
    return paths, mounts


def v2_path(root: str, inner: str) -> str:
    """The cgroup v2 dir of ``inner`` under the cgroup2 mount ``root``."""
    if inner.startswith("/"):
        return join(root, inner)
    own = own_cgroups().get("")
    if own is None:
        raise NotFound(f"no cgroup v2 entry in {PROC_CGROUP}")
    parent = own.rsplit("/", 1)[0] or "/"
    return join(root, parent, inner)


def v1_mount_layout() -> list[tuple[str, str, list[str]]]:
    """The v1 hierarchies a container sees: (mountpoint, mount root, subsystems).

    As runc does: the first mount of each subsystem listed in the runtime's
    ``/proc/self/cgroup``, cgroup2 excluded; ``name=`` prefixes kept.
    """
    own = own_cgroups()
    seen: set[str] = set()
    out = []
    for fstype, mountpoint, mroot, opts in cgroup_mounts():
        if fstype != "cgroup":
            continue
        subs = [o for o in opts if o in own and o not in seen]
        if not subs:
            continue
        seen.update(subs)
        out.append((mountpoint, mroot, subs))
    return out
