"""HostConfig resources -> OCI linux.resources (container start and ``docker update``).

Mirrors dockerd 20.10's WithResources: memory fields only when set, CPU
shares always, NanoCpus as quota over a 100ms period, PidsLimit <= 0 as
"unlimited" (-1), block-device rules resolved to major:minor by stat.
validate_resources holds the create/update checks and their messages.
"""

from __future__ import annotations

import os
import stat

from ....errors import Conflict, InvalidArgument

MIN_MEMORY = 6 * 1024 * 1024
CFS_PERIOD = 100000  # microseconds: NanoCpus are applied as quota per 100ms


def _device_numbers(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument(f"stat {path}: {e.strerror.lower() if e.strerror else e}", path=path) from e
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _memory(r: dict) -> dict:
    mem: dict = {}
    for src, dst in (("Memory", "limit"), ("MemoryReservation", "reservation"), ("MemorySwap", "swap")):
        if (r.get(src) or 0) > 0:
            mem[dst] = r[src]
    if r.get("MemorySwappiness") is not None and r["MemorySwappiness"] >= 0:
        mem["swappiness"] = r["MemorySwappiness"]
    if r.get("OomKillDisable") is not None:
        mem["disableOOMKiller"] = bool(r["OomKillDisable"])
    if r.get("KernelMemory"):
        mem["kernel"] = r["KernelMemory"]
    if r.get("KernelMemoryTCP"):
        mem["kernelTCP"] = r["KernelMemoryTCP"]
    return mem


def _cpu(r: dict) -> dict:
    shares = r.get("CpuShares") or 0
    if shares < 0:
        raise InvalidArgument("shares: invalid argument")
    cpu: dict = {"shares": shares}
    if r.get("CpusetCpus"):
        cpu["cpus"] = r["CpusetCpus"]
    if r.get("CpusetMems"):
        cpu["mems"] = r["CpusetMems"]
    if (r.get("NanoCpus") or 0) > 0:
        cpu["period"] = CFS_PERIOD
        cpu["quota"] = r["NanoCpus"] * CFS_PERIOD // 10**9
    if r.get("CpuPeriod"):
        cpu["period"] = r["CpuPeriod"]
    if r.get("CpuQuota"):
        cpu["quota"] = r["CpuQuota"]
    if r.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = r["CpuRealtimePeriod"]
    if r.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = r["CpuRealtimeRuntime"]
    return cpu


def _throttle(entries: list | None, key: str) -> list[dict]:
    out = []
    for e in entries or []:
        major, minor = _device_numbers(e["Path"])
        out.append({"major": major, "minor": minor, "rate": e[key]})
    return out


def _blkio(r: dict) -> dict:
    bio: dict = {"weight": r.get("BlkioWeight") or 0}
    weights = []
    for e in r.get("BlkioWeightDevice") or []:
        major, minor = _device_numbers(e["Path"])
        weights.append({"major": major, "minor": minor, "weight": e["Weight"]})
    if weights:
        bio["weightDevice"] = weights
    for src, dst in (("BlkioDeviceReadBps", "throttleReadBpsDevice"), ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        rules = _throttle(r.get(src), "Rate")
        if rules:
            bio[dst] = rules
    return bio


def resources_to_oci(resources: dict) -> dict:
    """linux.resources (memory, cpu, blockIO, pids) for a HostConfig or an update body.

    Device rules are not included: build_spec adds them (they depend on
    --privileged and the device mappings).
    """
    r = resources or {}
    out: dict = {"memory": _memory(r), "cpu": _cpu(r), "blockIO": _blkio(r)}
    if r.get("PidsLimit") is not None:
        out["pids"] = {"limit": r["PidsLimit"] if r["PidsLimit"] > 0 else -1}
    if r.get("IOMaximumBandwidth") or r.get("IOMaximumIOps"):
        raise InvalidArgument("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
    return out


_UPDATE_FIELDS = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
                  "MemorySwap", "MemoryReservation", "KernelMemory", "CpuRealtimePeriod", "CpuRealtimeRuntime")
_NANO_CONFLICTS = (("NanoCpus", "CpuPeriod", "Nano CPUs cannot be updated as CPU Period has already been set"),
                   ("NanoCpus", "CpuQuota", "Nano CPUs cannot be updated as CPU Quota has already been set"),
                   ("CpuPeriod", "NanoCpus", "CPU Period cannot be updated as NanoCPUs has already been set"),
                   ("CpuQuota", "NanoCpus", "CPU Quota cannot be updated as NanoCPUs has already been set"))


def merge_update(host_config: dict, update: dict) -> dict:
    """A new HostConfig with a ``POST /containers/{id}/update`` body applied (dockerd's rules).

    Zero / empty fields leave the stored value; Conflict errors carry
    dockerd's text (the caller prefixes ``Cannot update container <id>: ``).
    """
    hc = dict(host_config or {})
    for new, old, text in _NANO_CONFLICTS:
        if (update.get(new) or 0) > 0 and (hc.get(old) or 0) > 0:
            raise Conflict("Conflicting options: " + text)
    memory = update.get("Memory") or 0
    if memory and memory > (hc.get("MemorySwap") or 0) and not update.get("MemorySwap"):
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    if memory:
        hc["Memory"] = memory
    for key in _UPDATE_FIELDS:
        if update.get(key):
            hc[key] = update[key]
    if update.get("PidsLimit") is not None:
        hc["PidsLimit"] = update["PidsLimit"]
    policy = update.get("RestartPolicy") or {}
    if policy.get("Name"):
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        hc["RestartPolicy"] = dict(policy)
    return hc


def update_resources_to_oci(resources: dict) -> dict:
    """The resources dockerd hands the runtime on update (every settable field, zeros included)."""
    r = resources or {}
    period = CFS_PERIOD if r.get("NanoCpus") else 0
    quota = r["NanoCpus"] * CFS_PERIOD // 10**9 if r.get("NanoCpus") else 0
    out: dict = {
        "blockIO": {"weight": r.get("BlkioWeight") or 0},
        "cpu": {"shares": r.get("CpuShares") or 0, "cpus": r.get("CpusetCpus") or "", "mems": r.get("CpusetMems") or "",
                "period": period or r.get("CpuPeriod") or 0, "quota": quota or r.get("CpuQuota") or 0},
        "memory": {"limit": r.get("Memory") or 0, "reservation": r.get("MemoryReservation") or 0,
                   "kernel": r.get("KernelMemory") or 0},
    }
    if (r.get("MemorySwap") or 0) > 0:
        out["memory"]["swap"] = r["MemorySwap"]
    if r.get("PidsLimit") is not None:
        out["pids"] = {"limit": r["PidsLimit"] if r["PidsLimit"] > 0 else -1}
    return out


def _check_memory(r: dict, update: bool) -> None:
    memory, swap = r.get("Memory") or 0, r.get("MemorySwap") or 0
    reservation, kernel = r.get("MemoryReservation") or 0, r.get("KernelMemory") or 0
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    swappiness = r.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
    if 0 < kernel < MIN_MEMORY:
        raise InvalidArgument("Minimum kernel memory limit allowed is 6MB")


def _check_cpu(r: dict, ncpu: int) -> None:
    nano, period, quota = r.get("NanoCpus") or 0, r.get("CpuPeriod") or 0, r.get("CpuQuota") or 0
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > ncpu * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    weight = r.get("BlkioWeight") or 0
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")


def validate_resources(resources: dict, update: bool = False, ncpu: int | None = None) -> list[str]:
    """Docker's resource checks for create (update=False) and update; returns warnings."""
    r = resources or {}
    _check_memory(r, update)
    _check_cpu(r, ncpu or os.cpu_count() or 1)
    warnings = []
    if r.get("KernelMemory"):
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in a future release.")
    if r.get("OomKillDisable") and not r.get("Memory"):
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")
    if r.get("CpuPercent"):
        warnings.append("linux does not support CPU percent. Percent discarded.")
    return warnings


def is_device(path: str) -> bool:
    """Whether ``path`` (not following a final symlink) is a char or block device."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
