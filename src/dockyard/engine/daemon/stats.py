"""``GET /containers/{id}/stats``: Docker 20.10's ``StatsJSON`` from cgroup files.

The container's cgroups are found from its init's ``/proc/<pid>/cgroup``
(v1: one dir per controller hierarchy; v2: the unified dir) and read with
the runtime's controller readers (:mod:`dockyard.runtime.cgroups`), then
mapped the way dockerd maps containerd's metrics:

* v1: cpuacct usage (per-CPU too), cpu.stat throttling, memory usage /
  max / failcnt / limit and the memory.stat keys containerd knows, blkio
  entries with the kernel's op names (``Read``, ``Total``...), pids.
* v2: cpu.stat (usec * 1000), memory.current / memory.max, memory.stat's
  keys, ``failcnt`` = memory.events ``oom``, io.stat bytes as ``read`` /
  ``write`` entries (the other blkio lists are null), pids.
* The memory limit is capped at the host's MemTotal (no limit set).
* ``system_cpu_usage`` sums the first 7 fields of /proc/stat's ``cpu``
  line (ticks * 1e9 / 100); ``online_cpus`` is sysconf's online count.
* ``networks`` comes from ``/proc/<pid>/net/dev`` without ``lo``, left out
  when nothing else is there (``--network none``, or ``network=False``).
* ``precpu_stats``/``preread`` are the previous sample's (zero first); a
  stopped container gives zeroed stats with ``read`` "0001-01-01T00:00:00Z".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ...errors import DockyardError, Unavailable
from ...runtime.cgroups import blkio, cpu, cpuacct, detect, files, memory, paths, pids
from ...runtime.cgroups import stats as rstats
from .timefmt import ZERO_TIME, rfc3339_nano

CLK_TCK = 100
BLKIO_KEYS = (
    ("io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ("io_serviced_recursive", "ioServicedRecursive"),
    ("io_queue_recursive", "ioQueueRecursive"),
    ("io_service_time_recursive", "ioServiceTimeRecursive"),
    ("io_wait_time_recursive", "ioWaitTimeRecursive"),
    ("io_merged_recursive", "ioMergedRecursive"),
    ("io_time_recursive", "ioTimeRecursive"),
    ("sectors_recursive", "sectorsRecursive"),
)
# memory.stat keys dockerd reports (containerd's parsed fields; missing ones are 0)
V1_MEMORY_KEYS = (
    "cache rss rss_huge mapped_file dirty writeback pgpgin pgpgout pgfault pgmajfault inactive_anon "
    "active_anon inactive_file active_file unevictable hierarchical_memory_limit hierarchical_memsw_limit "
    "total_cache total_rss total_rss_huge total_mapped_file total_dirty total_writeback total_pgpgin "
    "total_pgpgout total_pgfault total_pgmajfault total_inactive_anon total_active_anon total_inactive_file "
    "total_active_file total_unevictable"
).split()
V2_MEMORY_KEYS = (
    "anon file kernel_stack slab sock shmem file_mapped file_dirty file_writeback anon_thp inactive_anon "
    "active_anon inactive_file active_file unevictable slab_reclaimable slab_unreclaimable pgfault pgmajfault "
    "workingset_refault workingset_activate workingset_nodereclaim pgrefill pgscan pgsteal pgactivate "
    "pgdeactivate pglazyfree pglazyfreed thp_fault_alloc thp_collapse_alloc"
).split()
_V1_READERS = (("memory", memory), ("cpu", cpu), ("cpuacct", cpuacct), ("pids", pids), ("blkio", blkio))


class ContainerGone(Exception):
    """The container's process or cgroup is gone: report it as stopped."""


def zero_cpu_stats() -> dict:
    """CPUStats with nothing in it, as Go marshals the zero value."""
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def _blkio(tree: dict | None, v2: bool) -> dict:
    """BlkioStats: v1 lists (maybe empty), v2 only service bytes; Go's nil slices are null."""
    out: dict = {}
    for key, rkey in BLKIO_KEYS:
        entries = None if tree is None else tree["blkio"][rkey]
        if v2:
            # dockerd maps only io.stat's byte counts, ops in lower case; no entries is a nil slice
            wanted = rkey == "ioServiceBytesRecursive" and entries
            entries = [dict(e, op=e["op"].lower()) for e in entries or []] if wanted else None
        out[key] = entries
    return out


def system_cpu_usage(proc: str = "/proc") -> int:
    """Host CPU time in ns: the first 7 fields of /proc/stat's "cpu" line, in USER_HZ ticks."""
    with open(os.path.join(proc, "stat")) as f:
        for line in f:
            if line.startswith("cpu "):
                fields = line.split()[1:8]
                if len(fields) < 7:
                    break
                return sum(int(v) for v in fields) * 1_000_000_000 // CLK_TCK
    raise DockyardError(f"invalid number of cpu fields in {proc}/stat")


def machine_memory(proc: str = "/proc") -> int:
    """MemTotal of /proc/meminfo in bytes (0 if unreadable)."""
    try:
        with open(os.path.join(proc, "meminfo")) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def network_stats(pid: int, proc: str = "/proc") -> dict[str, dict]:
    """Per-interface counters from the container's /proc/<pid>/net/dev, ``lo`` left out."""
    try:
        with open(os.path.join(proc, str(pid), "net", "dev")) as f:
            lines = f.read().splitlines()[2:]
    except (FileNotFoundError, ProcessLookupError):
        raise ContainerGone() from None
    out: dict[str, dict] = {}
    for line in lines:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 12 or name.strip() == "lo":
            continue
        v = [int(x) for x in fields]
        out[name.strip()] = {
            "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
            "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
        }  # fmt: skip
    return out


def cgroup_dirs(pid: int, *, root: str = "/sys/fs/cgroup", proc: str = "/proc") -> tuple[int, dict[str, str]]:
    """(version, {controller: dir}) of a process; v2's single dir is under key ""."""
    try:
        with open(os.path.join(proc, str(pid), "cgroup")) as f:
            entries = paths.parse_proc_cgroup(f.read())
    except (FileNotFoundError, ProcessLookupError):
        raise ContainerGone() from None
    if detect(root) == 2:
        return 2, {"": paths.join(root, entries.get("", "/"))}
    try:
        mounts = paths.cgroup_mounts()
    except DockyardError:
        mounts = []
    dirs: dict[str, str] = {}
    for sub, _ in _V1_READERS:
        cg = entries.get(sub)
        if cg is None:
            continue
        found = next((m for m in mounts if m[0] == "cgroup" and sub in m[3] and m[1].startswith(root)), None)
        if found is not None:
            dirs[sub] = paths.join(found[1], paths.relpath(found[2], cg))
        else:
            dirs[sub] = paths.join(root, sub, cg)
    return 1, dirs


def _memory_v1(st: dict, limit_cap: int) -> dict:
    mem = st["memory"]
    raw = mem["raw"]
    out = {"usage": mem["usage"]["usage"], "max_usage": mem["usage"]["max"]}
    out["stats"] = {k: raw.get(k, 0) for k in V1_MEMORY_KEYS}
    out["failcnt"] = mem["usage"]["failcnt"]
    out["limit"] = _cap(mem["usage"]["limit"], limit_cap)
    return _omit_zero(out)


def _memory_v2(st: dict, limit_cap: int, cgdir: str) -> dict:
    mem = st["memory"]
    raw = mem["raw"]
    out = {"usage": mem["usage"]["usage"], "stats": {k: raw.get(k, 0) for k in V2_MEMORY_KEYS}}
    events = files.read_opt(cgdir, "memory.events")
    if events is not None:
        out["failcnt"] = files.parse_key_values(events).get("oom", 0)
    out["limit"] = _cap(mem["usage"]["limit"], limit_cap)
    return _omit_zero(out)


def _cap(limit: int, machine: int) -> int:
    return machine if machine > 0 and limit > machine else limit


def _omit_zero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (0, {}, None)}


def _cpu(st: dict, v2: bool, system_usage: int, online: int) -> dict:
    usage = st["cpu"]["usage"]
    cpu_usage: dict = {"total_usage": usage["total"]}
    if not v2 and usage["percpu"]:
        cpu_usage["percpu_usage"] = usage["percpu"]
    cpu_usage["usage_in_kernelmode"] = usage["kernel"]
    cpu_usage["usage_in_usermode"] = usage["user"]
    thr = st["cpu"]["throttling"]
    out: dict = {"cpu_usage": cpu_usage}
    out.update(_omit_zero({"system_cpu_usage": system_usage, "online_cpus": online}))
    out["throttling_data"] = {
        "periods": thr["periods"],
        "throttled_periods": thr["throttledPeriods"],
        "throttled_time": thr["throttledTime"],
    }
    return out


def _read_one(read: Callable[[str, dict], None], path: str, st: dict) -> None:
    """One controller's stats; a file the kernel lacks there (Unavailable) leaves zeros, as containerd skips it."""
    try:
        read(path, st)
    except Unavailable:
        if not os.path.isdir(path):
            raise ContainerGone() from None


def _read_cgroups(version: int, dirs: dict[str, str]) -> dict:
    """The runtime's stats tree (before runc's omitempty) of the container's cgroups."""
    st = rstats.new()
    try:
        if version == 2:
            path = dirs[""]
            if not os.path.isdir(path):
                raise ContainerGone()
            for mod in (pids, memory, blkio, cpu):
                _read_one(mod.stats_v2, path, st)
            return st
        if "memory" in dirs and not os.path.isdir(dirs["memory"]):
            raise ContainerGone()
        for sub, mod in _V1_READERS:
            if sub in dirs:
                _read_one(mod.stats_v1, dirs[sub], st)
    except DockyardError as e:
        if not any(os.path.isdir(d) for d in dirs.values()):
            raise ContainerGone() from e
        raise
    return st


class StatsSampler:
    """Samples one container's stats; keeps the previous sample for ``precpu_stats``."""

    def __init__(
        self,
        pid: int,
        name: str,
        id: str,
        *,
        cgroup_root: str = "/sys/fs/cgroup",
        proc: str = "/proc",
        network: bool = True,
    ) -> None:
        self.pid = pid
        self.name = name if name.startswith("/") else "/" + name
        self.id = id
        self.cgroup_root = cgroup_root
        self.proc = proc
        self.network = network
        self.machine_memory = machine_memory(proc)
        self.online_cpus = os.sysconf("SC_NPROCESSORS_ONLN")
        self.prev_cpu = zero_cpu_stats()
        self.prev_read = ZERO_TIME

    def sample(self) -> dict:
        """One StatsJSON; zeroed (``read`` at Go's zero time) once the container is gone."""
        try:
            body = self._running()
        except ContainerGone:
            body = self._stopped()
        body["precpu_stats"] = self.prev_cpu
        self.prev_cpu, self.prev_read = body["cpu_stats"], body["read"]
        return self._ordered(body)

    def _running(self) -> dict:
        version, dirs = cgroup_dirs(self.pid, root=self.cgroup_root, proc=self.proc)
        read = rfc3339_nano(time.time_ns())
        st = _read_cgroups(version, dirs)
        v2 = version == 2
        body: dict = {"read": read, "preread": self.prev_read}
        body["pids_stats"] = _omit_zero(dict(st["pids"]))
        body["blkio_stats"] = _blkio(st, v2)
        body["cpu_stats"] = _cpu(st, v2, system_cpu_usage(self.proc), self.online_cpus)
        if v2:
            body["memory_stats"] = _memory_v2(st, self.machine_memory, dirs[""])
        else:
            body["memory_stats"] = _memory_v1(st, self.machine_memory) if "memory" in dirs else {}
        if self.network:
            nets = network_stats(self.pid, self.proc)
            if nets:
                body["networks"] = nets
        return body

    def _stopped(self) -> dict:
        return {
            "read": ZERO_TIME,
            "preread": self.prev_read,
            "pids_stats": {},
            "blkio_stats": _blkio(None, False),
            "cpu_stats": zero_cpu_stats(),
            "memory_stats": {},
        }

    def _ordered(self, body: dict) -> dict:
        """Go's field order of StatsJSON."""
        out = {
            "read": body["read"],
            "preread": body["preread"],
            "pids_stats": body["pids_stats"],
            "blkio_stats": body["blkio_stats"],
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": body["cpu_stats"],
            "precpu_stats": body["precpu_stats"],
            "memory_stats": body["memory_stats"],
            "name": self.name,
            "id": self.id,
        }
        if "networks" in body:
            out["networks"] = body["networks"]
        return out
