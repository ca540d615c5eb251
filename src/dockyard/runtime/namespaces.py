"""Which namespaces a container gets, and the clone that puts its init in them.

New pid and user namespaces are created by clone(2) flags; mount, uts, ipc
and network ones by the init's first unshare(2), cgroup by the init once it is
in its cgroup, time by the runtime before the clone (clone(2) cannot take that
flag). Namespaces given by path are joined by the init, except
user and pid: joining those must happen before the process that will be PID 1
exists, so an intermediate process joins them and clones the init.
"""

from __future__ import annotations

import os

from ..kernel import consts as c

# Made by the clone: pid (the init must be born into it) and user (the runtime maps its ids).
_CLONE_NOW = ("user", "pid")
# Made by the init itself, first thing (in a new user namespace, once its ids are mapped): the
# kernel's work for these, a network namespace above all, then runs beside the runtime's.
_UNSHARED_BY_INIT = ("mount", "uts", "ipc", "network")


class Plan:
    """The namespace part of a container's config, ready to act on."""

    def __init__(self, namespaces: list[dict], time_offsets: dict | None = None) -> None:
        self.new_types: set[str] = set()
        self.joins: list[tuple[str, str]] = []
        self.early_joins: list[tuple[str, str]] = []
        for ns in namespaces:
            kind, path = ns["type"], ns.get("path")
            if not path:
                self.new_types.add(kind)
            elif kind in ("user", "pid"):
                self.early_joins.append((kind, path))
            else:
                self.joins.append((kind, path))
        self.early_joins.sort(key=lambda j: j[0] != "user")  # user first: it grants the rest
        self.time_offsets = time_offsets if "time" in self.new_types else None

    @property
    def new_user(self) -> bool:
        return "user" in self.new_types

    @property
    def clone_flags(self) -> int:
        return self._flags(_CLONE_NOW)

    @property
    def init_unshare_flags(self) -> int:
        """The namespaces the init unshares itself (see _UNSHARED_BY_INIT)."""
        return self._flags(_UNSHARED_BY_INIT)

    def _flags(self, kinds: tuple[str, ...]) -> int:
        flags = 0
        for kind in self.new_types:
            if kind in kinds:
                flags |= c.NAMESPACE_FLAGS[kind]
        return flags

    def spawn(self, child_main) -> int:
        """Start the init in its namespaces running ``child_main``; return its pid."""
        from ..kernel import libc

        if not self.early_joins:
            pid = libc.clone(self.clone_flags)
            if pid == 0:
                _run_child(child_main)
            return pid
        r, w = os.pipe()
        middle = os.fork()
        if middle == 0:
            try:
                os.close(r)
                for kind, path in self.early_joins:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    libc.setns(fd, c.NAMESPACE_FLAGS[kind])
                    os.close(fd)
                pid = libc.clone(self.clone_flags)
                if pid == 0:
                    os.close(w)
                    _run_child(child_main)
                os.write(w, str(pid).encode())
                os._exit(0)
            except BaseException as e:
                os.write(2, f"dockyard-runtime: joining namespaces: {e}\n".encode())
                os._exit(1)
        os.close(w)
        data = b""
        while chunk := os.read(r, 64):
            data += chunk
        os.close(r)
        _, status = os.waitpid(middle, 0)
        if not data or status != 0:
            raise OSError("could not join the namespaces given by path")
        return int(data)

    def write_id_maps(self, pid: int, linux: dict) -> None:
        for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
            lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux.get(key) or [])
            if lines:
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(lines)

    def enter_time_namespace(self) -> None:
        """Unshare a time namespace for our children and set its clock offsets."""
        from ..kernel import libc

        libc.unshare(c.CLONE_NEWTIME)
        lines = []
        for clock, off in (self.time_offsets or {}).items():
            lines.append(f"{clock} {int(off.get('secs', 0))} {int(off.get('nanosecs', 0))}\n")
        if lines:
            with open("/proc/self/timens_offsets", "w") as f:
                f.write("".join(lines))


def _run_child(child_main) -> None:
    try:
        child_main()
    finally:
        os._exit(1)


def plan(namespaces: list[dict], time_offsets: dict | None = None) -> Plan:
    return Plan(namespaces, time_offsets)
