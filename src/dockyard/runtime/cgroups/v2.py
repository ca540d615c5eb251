"""The cgroup v2 driver: one dir in the unified hierarchy, as runc's fs2 driver.

Creating the dir enables, in ``cgroup.subtree_control`` of the root and of
every level above the container's dir, all the controllers the root offers
(``cgroup.controllers`` of the root), because a controller's files only
appear in a cgroup whose parent enabled it. Only the missing ones are
written; if the kernel refuses the batch, each is tried alone and failures
are left for the limit writes to report.

A level already in threaded mode (or "domain invalid", fixed by making it
threaded) can only take thread-aware controllers (cpu, pids, perf_event),
so memory, io, cpu weight/limits and hugetlb limits are refused there.
"""

from __future__ import annotations

import errno
import os

from ...errors import DockyardError, InvalidArgument, Unavailable
from . import files
from . import Manager, Resources

# (resources section, controller module), in the order the files are written.
_SET_ORDER = (("pids", "pids"), ("memory", "memory"), ("blockIO", "blkio"), ("cpu", "cpu"), ("devices", "devices"),
              ("cpu", "cpuset"), ("hugepageLimits", "hugetlb"), ("rdma", "rdma"))

SUBTREE = "cgroup.subtree_control"


def _domain_controllers_wanted(resources: Resources | None) -> bool:
    if not resources:
        return False
    from . import blkio, cpu, hugetlb, memory

    return memory.is_set(resources) or blkio.is_set(resources) or cpu.is_set(resources) or hugetlb.is_set(resources)


def _check_type(path: str, resources: Resources | None) -> None:
    kind = (files.read_opt(path, "cgroup.type") or "").strip()
    if kind == "domain invalid":
        if _domain_controllers_wanted(resources):
            raise InvalidArgument(f"cannot enter cgroup v2 {path} with domain controllers: it is in an invalid state")
        try:
            files.write(path, "cgroup.type", "threaded")
        except DockyardError:
            pass
    elif kind in ("domain threaded", "threaded"):
        if _domain_controllers_wanted(resources):
            raise InvalidArgument(f"cannot enter cgroup v2 {path} with domain controllers: it is in {kind} mode")


def _enable(path: str, controllers: list[str]) -> None:
    enabled = set((files.read_opt(path, SUBTREE) or "").split())
    missing = [c for c in controllers if c not in enabled]
    if not missing:
        return
    try:
        files.write(path, SUBTREE, " ".join("+" + c for c in missing))
    except DockyardError:
        for c in missing:
            try:
                files.write(path, SUBTREE, "+" + c)
            except DockyardError:
                pass  # e.g. rootless or nested: the limit writes will say


def create(path: str, root: str, resources: Resources | None) -> None:
    """Create ``path`` below ``root``, enabling controllers on the way down."""
    if path != root and not path.startswith(root + "/"):
        raise InvalidArgument(f"invalid cgroup path {path}: not under {root}")
    controllers = files.read(root, "cgroup.controllers").split()
    levels = [root]
    if path != root:
        for part in path[len(root) + 1 :].split("/"):
            levels.append(levels[-1] + "/" + part)
    created: list[str] = []
    try:
        for i, level in enumerate(levels):
            if i > 0:
                try:
                    os.mkdir(level, 0o755)
                    created.append(level)
                except FileExistsError:
                    pass
                except OSError as e:
                    raise files.error(e, "mkdir", level) from e
                _check_type(level, resources)
            if i < len(levels) - 1 and controllers:
                _enable(level, controllers)
    except BaseException:
        for level in reversed(created):
            try:
                os.rmdir(level)
            except OSError:
                pass
        raise


class V2Manager(Manager):
    """A container's cgroup in the unified (v2) hierarchy."""

    version = 2

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = root

    def __repr__(self) -> str:
        return f"V2Manager({self.path!r})"

    def create(self, resources: Resources | None = None) -> None:
        create(self.path, self.root, resources)
        self._created = True

    def apply(self, pid: int, resources: Resources | None = None) -> None:
        if not getattr(self, "_created", False):
            create(self.path, self.root, resources)
        files.write_pid(self.path, pid)

    def enter(self, pid: int) -> None:
        files.write_pid(self.path, pid)

    def set(self, resources: Resources) -> None:
        from . import controller

        for key, name in _SET_ORDER:
            if key in resources:
                controller(name).set_v2(self.path, resources)
        if resources.get("unified"):
            self._set_unified(resources["unified"])

    def _set_unified(self, unified: object) -> None:
        if not isinstance(unified, dict):
            raise InvalidArgument("resources.unified must be an object")
        for key, value in unified.items():
            if "/" in key:
                raise InvalidArgument(f"unified resource {key!r} must be a file name (no slashes)")
            if not isinstance(value, str):
                raise InvalidArgument(f"unified resource {key!r} must be a string")
            try:
                files.write_raw(self.path, key, value)
            except OSError as e:
                if e.errno in (errno.EPERM, errno.ENOENT):
                    controller, dot, _param = key.partition(".")
                    if not dot:
                        raise InvalidArgument(f"unified resource {key!r} must be in the form CONTROLLER.PARAMETER") from e
                    available = (files.read_opt(self.path, "cgroup.controllers") or "").split()
                    if controller != "cgroup" and controller not in available:
                        raise Unavailable(
                            f"unified resource {key!r} can't be set: controller {controller!r} not available"
                        ) from e
                raise files.error(e, f"write {value!r} to", files.join(self.path, key)) from e

    def pids(self) -> list[int]:
        return files.all_pids(self.path)

    def freeze(self) -> None:
        from . import freezer

        freezer.freeze_v2(self.path)

    def thaw(self) -> None:
        from . import freezer

        freezer.thaw_v2(self.path)

    def frozen(self) -> bool:
        from . import freezer

        return freezer.frozen_v2(self.path)

    def stats(self) -> dict:
        from . import blkio, cpu, hugetlb, memory, pids, stats

        st = stats.new()
        pids.stats_v2(self.path, st)
        memory.stats_v2(self.path, st)
        blkio.stats_v2(self.path, st)
        cpu.stats_v2(self.path, st)
        hugetlb.stats_v2(self.path, st)
        return stats.finish(st)

    def oom_kill_count(self) -> int:
        """memory.events' oom_kill (0 when the memory controller is off)."""
        text = files.read_opt(self.path, "memory.events")
        if text is None:
            if not os.path.isdir(self.path):
                files.read(self.path, "memory.events")  # raises NotFound
            return 0
        return files.value_by_key(text, "oom_kill")

    def exists(self) -> bool:
        return files.exists(self.path)

    def destroy(self) -> None:
        files.remove([self.path])

    def to_state(self) -> dict:
        return {"version": 2, "root": self.root, "path": self.path}

    def container_mounts(self) -> list[tuple[str, str]]:
        """``[(hierarchy root, "")]``: what runc shows without a cgroupns.

        runc mounts a fresh cgroup2 at /sys/fs/cgroup, which, with no
        cgroup namespace, shows the whole hierarchy; where that mount is
        refused (EPERM/EBUSY) it bind-mounts the host's root instead. The
        runtime should do the same: mount cgroup2, else bind ``root``.
        """
        return [(self.root, "")]
