"""The cgroup v1 driver: one dir per mounted hierarchy, as runc's fs driver.

A container has a dir in every hierarchy runc knows (see
:data:`.paths.V1_SUBSYSTEMS`), the named ``name=systemd`` one and, on hybrid
hosts, the cgroup2 one included (these two are only joined, best effort).
Hierarchies mounted together (``cpu,cpuacct``) share one dir, joined once.
"""

from __future__ import annotations

import os

from ...errors import DockyardError, InvalidArgument, Unavailable
from . import Manager, Resources, files, paths

TYPE_CHECKING = False  # mypy sees True; nothing extra is imported at run time
if TYPE_CHECKING:
    from types import ModuleType

# subsystem -> resources key it reads, in runc's order of Set
_SET_ORDER = (
    ("cpuset", "cpu"),
    ("devices", "devices"),
    ("memory", "memory"),
    ("cpu", "cpu"),
    ("pids", "pids"),
    ("blkio", "blockIO"),
    ("hugetlb", "hugepageLimits"),
    ("net_cls", "network"),
    ("net_prio", "network"),
    ("rdma", "rdma"),
)
_STATS_ORDER = ("cpuset", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb")
_JOIN_ONLY = ("name=systemd", "")


def _controller(sub: str) -> ModuleType:
    """The module of a controller, imported on first use."""
    from . import controller

    return controller(sub)


def _wants(sub: str, resources: dict, key: str) -> bool:
    """Whether ``resources`` asks ``sub`` for anything (runc errors then
    when the hierarchy is missing; empty or zero settings are no-ops)."""
    value = resources.get(key)
    if isinstance(value, dict):
        if key == "cpu":  # one section for two controllers
            keys = ("cpus", "mems") if sub == "cpuset" else tuple(k for k in value if k not in ("cpus", "mems"))
            return any(value.get(k) not in (None, 0, "") for k in keys)
        return any(v not in (None, 0, "", [], {}, False) for v in value.values())
    return bool(value)


class V1Manager(Manager):
    """A container's cgroups on the per-controller (v1) hierarchies."""

    version = 1

    def __init__(self, subsystem_paths: dict[str, str], mounts: dict[str, str], root: str) -> None:
        self.paths = subsystem_paths
        self.mounts = mounts
        self.root = root

    def __repr__(self) -> str:
        return f"V1Manager({self.paths.get('devices')!r})"

    def path(self, subsystem: str) -> str | None:
        """The container's dir in one hierarchy (None when not mounted)."""
        return self.paths.get(subsystem)

    def create(self, resources: Resources | None = None) -> None:
        """Create every dir (no process moved yet); a later ``apply`` only joins."""
        self._prepared = self._prepare(resources)

    def apply(self, pid: int, resources: Resources | None = None) -> None:
        """Create every dir first (unless ``create`` did), then move ``pid`` into all of them.

        The moves are done back to back on purpose: the first write to a
        cgroup.procs waits for an RCU grace period (milliseconds), and
        writes that follow it closely do not wait again.
        """
        joins = getattr(self, "_prepared", None)
        if joins is None:
            joins = self._prepare(resources)
        for sub, path in joins:
            try:
                files.write_pid(path, pid)
            except DockyardError:
                if sub not in _JOIN_ONLY:
                    raise

    def _prepare(self, resources: Resources | None) -> list[tuple[str, str]]:
        joins: list[tuple[str, str]] = []
        for sub in paths.V1_SUBSYSTEMS:
            path = self.paths.get(sub)
            if path is None or any(path == p for _s, p in joins):
                continue
            try:
                if sub == "cpuset":
                    from . import cpuset

                    cpuset.apply_v1(path, self.mounts[sub], resources)
                else:
                    files.mkdirs(path)
                    if sub == "cpu" and resources and resources.get("cpu"):
                        from . import cpu

                        cpu.set_rt_v1(path, resources)
            except DockyardError:
                if sub in _JOIN_ONLY:
                    continue  # runc ignores failures to join these
                raise
            joins.append((sub, path))
        return joins

    def enter(self, pid: int) -> None:
        for path in dict.fromkeys(self.paths.values()):
            if os.path.isdir(path):
                files.write_pid(path, pid)

    def set(self, resources: Resources) -> None:
        if resources.get("unified"):
            raise InvalidArgument("invalid configuration: cannot use unified on cgroup v1")
        for sub, key in _SET_ORDER:
            if key not in resources:
                continue
            path = self.paths.get(sub)
            if path is None:
                if not _wants(sub, resources, key):
                    continue
                raise Unavailable(f"cannot set {sub} limit: the {sub} cgroup is not mounted")
            _controller(sub).set_v1(path, resources)

    def pids(self) -> list[int]:
        return files.all_pids(self.paths["devices"])

    def _freezer(self) -> str:
        path = self.paths.get("freezer")
        if path is None:
            raise Unavailable("cannot toggle freezer: the freezer cgroup is not mounted")
        return path

    def freeze(self) -> None:
        from . import freezer

        freezer.freeze_v1(self._freezer())

    def thaw(self) -> None:
        from . import freezer

        freezer.thaw_v1(self._freezer())

    def frozen(self) -> bool:
        path = self.paths.get("freezer")
        if path is None:
            return False
        from . import freezer

        return freezer.frozen_v1(path)

    def stats(self) -> dict:
        from . import stats

        st = stats.new()
        for sub in _STATS_ORDER:
            path = self.paths.get(sub)
            if path is not None:
                _controller(sub).stats_v1(path, st)
        return stats.finish(st)

    def oom_kill_count(self) -> int:
        """memory.oom_control's oom_kill (0 without a memory hierarchy)."""
        path = self.paths.get("memory")
        if path is None:
            return 0
        from . import memory

        return memory.oom_kill_count_v1(path)

    def exists(self) -> bool:
        return files.exists(self.paths["devices"])

    def destroy(self) -> None:
        files.remove(list(self.paths.values()))

    def to_state(self) -> dict:
        return {"version": 1, "root": self.root, "paths": dict(self.paths), "mounts": dict(self.mounts)}

    def container_mounts(self) -> list[tuple[str, str]]:
        """What runc puts at /sys/fs/cgroup for a ``cgroup`` mount without a cgroupns.

        A tmpfs at /sys/fs/cgroup holding, in order:

        * one ``(source, name)`` per v1 hierarchy the runtime is in (cgroup2
          excluded): bind-mount the absolute host dir ``source`` (this
          container's cgroup in that hierarchy, e.g.
          ``/sys/fs/cgroup/memory/docker/abc``) at ``/sys/fs/cgroup/<name>``
          (``name`` is the host mount dir name: ``memory``,
          ``cpu,cpuacct``, ``systemd``), with the cgroup mount's flags;
        * then ``("symlink:<target>", link)`` pairs: create the symlink
          ``/sys/fs/cgroup/<link>`` -> ``<target>``, one per member of a
          combined hierarchy (``("symlink:cpu,cpuacct", "cpu")``).

        So: a first element starting with ``symlink:`` is a symlink target,
        anything else an absolute bind source. Hierarchies the container
        was not put in (say ``misc``) show the runtime's own cgroup there,
        as in runc. With a cgroup namespace, mount a fresh ``cgroup`` with
        the options of ``name`` (``name=systemd`` for ``systemd``) instead
        of each bind.
        """
        own = paths.own_cgroups()
        binds: list[tuple[str, str]] = []
        for mountpoint, mroot, subs in paths.v1_mount_layout():
            name = mountpoint.rsplit("/", 1)[-1]
            source = next((self.paths[s] for s in subs if s in self.paths), None)
            if source is None:
                source = paths.join(mountpoint, paths.relpath(mroot, own[subs[0]]))
            binds.append((source, name))
        links = [("symlink:" + name, part) for _src, name in binds if "," in name for part in name.split(",")]
        return binds + links

