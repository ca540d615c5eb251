"""The memory controller.

OCI ``memory.swap`` is memory+swap (the v1 ``memsw`` meaning); 0 means
unset and -1 unlimited.

v1: ``limit`` -> memory.limit_in_bytes, ``swap`` ->
memory.memsw.limit_in_bytes, which the kernel requires to stay >= the
memory limit, so when both are set the swap limit is written first if it
is unlimited or above the current memory limit (raising), else last
(lowering). An unlimited memory limit without a swap value also makes swap
unlimited (when swap accounting exists). ``reservation`` ->
memory.soft_limit_in_bytes, ``disableOOMKiller`` -> memory.oom_control,
``swappiness`` (0-100, -1 = leave) -> memory.swappiness. Kernel memory
settings are ignored, as runc does.

v2: memory.max, memory.low, and memory.swap.max = swap - limit ("max"
for -1); swappiness and the OOM killer switch do not exist there.
"""

from __future__ import annotations

from ...errors import DockyardError, InvalidArgument
from . import files
from .values import integer, optional, section, uint64

SWAP_V1 = "memory.memsw.limit_in_bytes"
LIMIT_V1 = "memory.limit_in_bytes"


def _set_limit_v1(path: str, value: int) -> None:
    if value == 0:
        return
    try:
        files.write_raw(path, LIMIT_V1, str(value))
    except OSError as e:
        if e.errno == 16:  # EBUSY: below what the cgroup already uses
            usage = files.read_uint_opt(path, "memory.usage_in_bytes")
            peak = files.read_uint_opt(path, "memory.max_usage_in_bytes")
            raise InvalidArgument(
                f"unable to set memory limit to {value} (current usage: {usage}, peak usage: {peak})",
                path=files.join(path, LIMIT_V1),
            ) from e
        raise files.error(e, f"write {str(value)!r} to", files.join(path, LIMIT_V1)) from e


def _set_swap_v1(path: str, value: int) -> None:
    if value != 0:
        files.write(path, SWAP_V1, str(value))


def set_v1(path: str, resources: dict) -> None:
    mem = section(resources, "memory")
    if not mem:
        return
    limit = integer(mem, "limit", "memory")
    swap = integer(mem, "swap", "memory")
    if limit == -1 and swap == 0 and files.exists(files.join(path, SWAP_V1)):
        swap = -1
    swap_first = False
    if limit != 0 and swap != 0:
        current = files.read_uint(path, LIMIT_V1)
        swap_first = swap == -1 or current < uint64(swap)
    if swap_first:
        _set_swap_v1(path, swap)
        _set_limit_v1(path, limit)
    else:
        _set_limit_v1(path, limit)
        _set_swap_v1(path, swap)
    reservation = integer(mem, "reservation", "memory")
    if reservation != 0:
        files.write(path, "memory.soft_limit_in_bytes", str(reservation))
    if mem.get("disableOOMKiller") is True:
        files.write(path, "memory.oom_control", "1")
    swappiness = optional(mem, "swappiness", "memory")
    if swappiness is None or swappiness == -1:
        return
    if not 0 <= swappiness <= 100:
        raise InvalidArgument(f"invalid memory swappiness value: {swappiness} (valid range is 0-100)")
    files.write(path, "memory.swappiness", str(swappiness))


def swap_v2(swap: int, limit: int) -> int:
    """OCI memory+swap as cgroup v2 swap-only (runc's conversion)."""
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        raise InvalidArgument("unable to set swap limit without memory limit")
    if limit < 0:
        raise InvalidArgument(f"invalid memory value: {limit}")
    if swap < limit:
        raise InvalidArgument("memory+swap limit should be >= memory limit")
    return swap - limit


def _v2_str(value: int) -> str:
    if value == 0:
        return ""
    if value == -1:
        return "max"
    return str(value)


def is_set(resources: dict) -> bool:
    mem = section(resources, "memory")
    return any(integer(mem, k, "memory") != 0 for k in ("limit", "reservation", "swap"))


def _check_usage_v2(path: str, limit: int, swap: int) -> None:
    """``checkBeforeUpdate``: refuse a limit at or below the current usage."""
    if limit <= 0 and swap <= 0:
        return
    try:
        usage = files.read_uint(path, "memory.current")
    except DockyardError:
        return  # best effort, as runc
    if swap > 0 and swap <= usage:
        raise InvalidArgument(f"rejecting memory+swap limit {swap} <= usage {usage}")
    if limit > 0 and limit <= usage:
        raise InvalidArgument(f"rejecting memory limit {limit} <= usage {usage}")


def set_v2(path: str, resources: dict) -> None:
    if not is_set(resources):
        return
    mem = section(resources, "memory")
    limit = integer(mem, "limit", "memory")
    swap = integer(mem, "swap", "memory")
    if mem.get("checkBeforeUpdate") is True:
        _check_usage_v2(path, limit, swap)
    swap2 = swap_v2(swap, limit)
    swap_str = _v2_str(swap2)
    if swap_str == "" and swap2 == 0 and swap > 0:
        swap_str = "0"  # memory == memory+swap: no swap at all
    if swap_str:
        try:
            files.write_raw(path, "memory.swap.max", swap_str)
        except FileNotFoundError as e:
            # no swap accounting: "unlimited" and "none" are already true
            if swap_str not in ("max", "0"):
                raise files.error(e, f"write {swap_str!r} to", files.join(path, "memory.swap.max")) from e
        except OSError as e:
            raise files.error(e, f"write {swap_str!r} to", files.join(path, "memory.swap.max")) from e
    if _v2_str(limit):
        files.write(path, "memory.max", _v2_str(limit))
    reservation = integer(mem, "reservation", "memory")
    if _v2_str(reservation):
        files.write(path, "memory.low", _v2_str(reservation))


def _entry_v1(path: str, prefix: str, optional_group: bool) -> dict | None:
    if optional_group:
        usage = files.read_uint_opt(path, prefix + ".usage_in_bytes")
        if usage is None:
            return None  # no swap / kernel memory accounting
    else:
        usage = files.read_uint(path, prefix + ".usage_in_bytes")
    if prefix == "memory.kmem":  # its limit file is gone from newer kernels
        limit = files.read_uint_opt(path, prefix + ".limit_in_bytes") or 0
    else:
        limit = files.read_uint(path, prefix + ".limit_in_bytes")
    return {
        "limit": limit,
        "usage": usage,
        "max": files.read_uint(path, prefix + ".max_usage_in_bytes"),
        "failcnt": files.read_uint(path, prefix + ".failcnt"),
    }


def stats_v1(path: str, st: dict) -> None:
    raw_text = files.read_opt(path, "memory.stat")
    if raw_text is None:
        return
    out = st["memory"]
    out["raw"] = raw = files.parse_key_values(raw_text, files.join(path, "memory.stat"))
    out["cache"] = raw.get("cache", 0)
    for key, prefix, opt in (
        ("usage", "memory", False),
        ("swap", "memory.memsw", True),
        ("kernel", "memory.kmem", True),
        ("kernelTCP", "memory.kmem.tcp", True),
    ):
        entry = _entry_v1(path, prefix, opt)
        if entry is not None:
            out[key] = entry


def _entry_v2(path: str, prefix: str) -> dict | None:
    usage = files.read_uint_opt(path, prefix + ".current")
    if usage is None:
        return None
    peak = files.read_uint_opt(path, prefix + ".peak")
    return {"limit": files.read_uint(path, prefix + ".max"), "usage": usage, "max": peak or 0, "failcnt": 0}


def stats_v2(path: str, st: dict) -> None:
    raw_text = files.read_opt(path, "memory.stat")
    if raw_text is None:
        return
    out = st["memory"]
    out["raw"] = raw = files.parse_key_values(raw_text, files.join(path, "memory.stat"))
    out["cache"] = raw.get("file", 0)
    usage = _entry_v2(path, "memory")
    if usage is None:
        return
    out["usage"] = usage
    swap = _entry_v2(path, "memory.swap") or {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    # reported as memory+swap, like v1's memsw
    swap["usage"] = uint64(swap["usage"] + usage["usage"])
    if swap["limit"] != files.MAX_UINT64:
        swap["limit"] = uint64(swap["limit"] + usage["limit"])
    swap["max"] = 0
    out["swap"] = swap


def oom_kill_count_v1(path: str) -> int:
    return files.value_by_key(files.read(path, "memory.oom_control"), "oom_kill")


def oom_kill_count_v2(path: str) -> int:
    return files.value_by_key(files.read(path, "memory.events"), "oom_kill")
