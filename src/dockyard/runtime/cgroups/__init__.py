"""The cgroup layer of dockyard-runtime: runc's cgroupfs driver, v1 and v2.

``new_manager`` picks the driver (:mod:`.v1` for the per-controller
hierarchies, :mod:`.v2` for the unified one) and resolves ``cgroupsPath``
as runc does (see :mod:`.paths`). Each controller is one module (memory,
cpu, cpuacct, cpuset, pids, devices, blkio, hugetlb, freezer, net_cls,
net_prio, rdma) that knows its v1 files and its v2 files; the drivers only
decide which dirs and in which order.

Typical use by ``create``::

    mgr = cgroups.new_manager(spec_linux.get("cgroupsPath"), container_id)
    res = cgroups.create_resources(spec_linux)   # adds runc's default devices
    mgr.apply(init_pid, res)
    mgr.set(res)
    state["cgroups"] = mgr.to_state()

This package only does file I/O; the eBPF device filter of v2 is loaded
through :mod:`dockyard.kernel.bpf`. Modules are imported lazily so that the
start path only loads what it uses.
"""

from __future__ import annotations

import os

from ...errors import InvalidArgument, Unavailable

__all__ = ["Manager", "Resources", "detect", "new_manager", "load_manager", "create_resources"]

DEFAULT_ROOT = "/sys/fs/cgroup"

# An OCI ``linux.resources`` object, as decoded from config.json.
Resources = dict


class Manager:
    """A container's cgroup(s): create, join, limit, observe, freeze, remove.

    Resources are OCI ``linux.resources`` dicts (camelCase keys, as in
    config.json). Only the sections and fields present are applied, and, as
    in runc, a 0 value means "leave unchanged" for most numbers.
    """

    version: int

    def apply(self, pid: int, resources: Resources | None = None) -> None:
        """Create the cgroup dir(s) and move ``pid`` in.

        ``resources`` (optional) is what runc needs before the move: v1
        cpuset cpus/mems (otherwise copied from the parent, as the kernel
        leaves them empty) and the realtime cpu settings; v2 uses it to
        refuse domain controllers in a threaded subtree.
        """
        raise NotImplementedError

    def create(self, resources: Resources | None = None) -> None:
        """Create the cgroup dir(s) without moving any process in.

        ``create`` calls this before the init exists, so the container's
        /sys/fs/cgroup can be bind-mounted while :meth:`apply` (which then
        only joins) waits on the kernel.
        """
        raise NotImplementedError

    def enter(self, pid: int) -> None:
        """Move ``pid`` into the existing cgroup(s) (exec); create nothing."""
        raise NotImplementedError

    def set(self, resources: Resources) -> None:
        """Apply the limits in ``resources`` (only the fields present)."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every process in the cgroup and its sub-cgroups."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Freeze every process; returns once the kernel reports frozen."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Undo :meth:`freeze`."""
        raise NotImplementedError

    def frozen(self) -> bool:
        """Whether this cgroup itself is frozen (not merely an ancestor)."""
        raise NotImplementedError

    def stats(self) -> dict:
        """The ``data`` object of ``runc events --stats`` (runc's field names)."""
        raise NotImplementedError

    def oom_kill_count(self) -> int:
        """How many processes the OOM killer has killed in this cgroup."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the cgroup dir is still there."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Remove the cgroup dir(s), retrying while busy; fine if gone."""
        raise NotImplementedError

    def to_state(self) -> dict:
        """A JSON-serialisable dict that :func:`load_manager` turns back into this."""
        raise NotImplementedError

    def container_mounts(self) -> list[tuple[str, str]]:
        """What to show at /sys/fs/cgroup in a container without a cgroup namespace."""
        raise NotImplementedError


CONTROLLERS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb", "net_cls", "net_prio",
               "rdma", "freezer")


def controller(name: str):
    """The module of controller ``name`` (one module each: memory.py, cpu.py, ...), imported on first use."""
    if name not in CONTROLLERS:
        raise InvalidArgument(f"unknown cgroup controller {name!r}")
    return __import__(f"{__name__}.{name}", fromlist=("set_v1",))


def detect(root: str = DEFAULT_ROOT) -> int:
    """2 when ``root`` is a cgroup2 (unified) mount, else 1.

    A cgroup2 filesystem has ``cgroup.controllers`` in every dir, its root
    included; the tmpfs holding v1 hierarchies (and hybrid hosts'
    ``/sys/fs/cgroup``) does not. One stat, no mount table (so a cgroup2
    dir below the mount would also answer 2; pass the mount point).
    """
    try:
        os.stat(root + "/cgroup.controllers")
    except OSError:
        return 1
    return 2


def new_manager(
    cgroups_path: str | None,
    container_id: str,
    *,
    root: str = DEFAULT_ROOT,
    version: int | None = None,
) -> Manager:
    """The manager of a container's cgroup, nothing created yet.

    ``cgroups_path`` is ``linux.cgroupsPath``: absolute means under the
    hierarchy root, relative means under the runtime's own cgroup (v1) or
    its parent (v2), empty means the container id as a relative path. A
    systemd ``slice:prefix:name`` path raises Unavailable.
    """
    from . import paths

    if version is None:
        version = detect(root)
    elif version == 2 and detect(root) != 2:
        raise Unavailable(f"{root} is not a cgroup2 mount: cannot use cgroup v2 there", path=root)
    root = paths.clean(root)
    inner = paths.inner_path(cgroups_path, container_id)
    if version == 2:
        from .v2 import V2Manager

        return V2Manager(paths.v2_path(root, inner), root)
    if version == 1:
        from .v1 import V1Manager

        subsystem_paths, mounts = paths.v1_paths(root, inner)
        return V1Manager(subsystem_paths, mounts, root)
    raise InvalidArgument(f"unknown cgroup version {version}")


def load_manager(state: dict) -> Manager:
    """Rebuild a manager from :meth:`Manager.to_state` (no I/O)."""
    version = state.get("version")
    if version == 2:
        from .v2 import V2Manager

        return V2Manager(state["path"], state["root"])
    if version == 1:
        from .v1 import V1Manager

        return V1Manager(dict(state["paths"]), dict(state["mounts"]), state["root"])
    raise InvalidArgument(f"invalid cgroup state: unknown version {version!r}")


def create_resources(linux: dict | None) -> Resources:
    """The resources ``create`` applies: ``linux.resources`` plus runc's defaults.

    runc always appends its default device rules (mknod of anything; rwm of
    /dev/null, zero, full, random, urandom, tty, ptmx, pts/*, net/tun) after
    the config's own rules, leaving out those for a path that
    ``linux.devices`` redefines. Without it a config that denies all
    devices (like ``runc spec``'s) would deny /dev/null.
    """
    from .devices import spec_rules

    linux = linux or {}
    res = dict(linux.get("resources") or {})
    res["devices"] = spec_rules(res.get("devices"), linux.get("devices"))
    return res
