"""The shape of ``runc events --stats`` data (runc's types/events.go).

Controllers fill a zeroed tree from :func:`new`; :func:`finish` then drops
what Go's ``omitempty`` drops (zero numbers, empty lists and maps; nested
objects always stay), so the JSON matches runc's byte for byte in layout:

    {"cpu": {"usage": {...}, "throttling": {...}}, "cpuset": {...},
     "memory": {...}, "pids": {...}, "blkio": {...}, "hugetlb": {...},
     "intel_rdt": {}, "network_interfaces": null}

``network_interfaces`` is left null (the caller may fill it from the
container's network namespace), ``intel_rdt`` empty (no RDT support).
"""

from __future__ import annotations

BLKIO_KEYS = (
    "ioServiceBytesRecursive",
    "ioServicedRecursive",
    "ioQueueRecursive",
    "ioServiceTimeRecursive",
    "ioWaitTimeRecursive",
    "ioMergedRecursive",
    "ioTimeRecursive",
    "sectorsRecursive",
)

# keys runc always emits (no omitempty), per object
_KEEP = {
    "usage": ("kernel", "user"),  # cpu.usage
    "entry": ("limit", "failcnt"),  # memory entries
    "hugetlb": ("failcnt",),
}


def memory_entry() -> dict:
    return {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}


def new() -> dict:
    """A zeroed stats tree for the controllers to fill."""
    return {
        "cpu": {
            "usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [], "kernel": 0, "user": 0},
            "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0},
        },
        "cpuset": {
            "cpus": [],
            "cpu_exclusive": 0,
            "mems": [],
            "mem_hardwall": 0,
            "mem_exclusive": 0,
            "memory_migrate": 0,
            "memory_spread_page": 0,
            "memory_spread_slab": 0,
            "memory_pressure": 0,
            "sched_load_balance": 0,
            "sched_relax_domain_level": 0,
        },
        "memory": {
            "cache": 0,
            "usage": memory_entry(),
            "swap": memory_entry(),
            "kernel": memory_entry(),
            "kernelTCP": memory_entry(),
            "raw": {},
        },
        "pids": {"current": 0, "limit": 0},
        "blkio": {k: [] for k in BLKIO_KEYS},
        "hugetlb": {},
    }


def _drop_zero(obj: dict, keep: tuple[str, ...] = ()) -> dict:
    return {k: v for k, v in obj.items() if k in keep or (v != 0 and v != [] and v != {} and v != "")}


def finish(st: dict) -> dict:
    """Apply runc's omitempty rules and add the non-cgroup members."""
    cpu = st["cpu"]
    cpuset = st["cpuset"]
    mem = st["memory"]
    out_mem: dict = {"cache": mem["cache"]} if mem["cache"] else {}
    for key in ("usage", "swap", "kernel", "kernelTCP"):
        out_mem[key] = _drop_zero(mem[key], _KEEP["entry"])
    if mem["raw"]:
        out_mem["raw"] = mem["raw"]
    return {
        "cpu": {"usage": _drop_zero(cpu["usage"], _KEEP["usage"]), "throttling": _drop_zero(cpu["throttling"])},
        "cpuset": {k: v for k, v in cpuset.items() if v != [] or k not in ("cpus", "mems")},
        "memory": out_mem,
        "pids": _drop_zero(st["pids"]),
        "blkio": {k: [_drop_zero(e) for e in v] for k, v in st["blkio"].items() if v},
        "hugetlb": {k: _drop_zero(v, _KEEP["hugetlb"]) for k, v in st["hugetlb"].items()},
        "intel_rdt": {},
        "network_interfaces": None,
    }
