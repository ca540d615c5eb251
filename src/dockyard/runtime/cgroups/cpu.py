"""The cpu controller (CFS shares, quota/period, burst, idle, realtime).

v1: ``shares`` -> cpu.shares (read back: the kernel clamps, runc reports
the clamp as an error), ``period`` -> cpu.cfs_period_us, ``quota`` ->
cpu.cfs_quota_us, ``burst`` -> cpu.cfs_burst_us (skipped when the kernel
lacks it), ``idle`` -> cpu.idle, ``realtimePeriod``/``realtimeRuntime`` ->
cpu.rt_period_us/cpu.rt_runtime_us (also written before the first process
joins, since a SCHED_RR process cannot join a group without RT time). A
period or burst the kernel refuses with EINVAL is retried after the quota
when a quota is also being set (the old quota may not fit the new period).

v2: ``shares`` -> cpu.weight = 1 + (shares - 2) * 9999 / 262142 (runc's
mapping of [2, 262144] onto [1, 10000], in unsigned 64-bit arithmetic),
quota/period -> cpu.max "<quota|max> <period|100000>", ``burst`` ->
cpu.max.burst, ``idle`` -> cpu.idle; realtime settings do not exist.

Burst and idle follow runc 1.2 (runc 1.1 ignores them).
"""

from __future__ import annotations

from ...errors import InvalidArgument
from . import files
from .values import integer, optional, section, uint64


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares to cgroup v2 cpu.weight, as runc converts it."""
    if shares == 0:
        return 0
    return 1 + uint64(uint64(shares - 2) * 9999) // 262142


def _write_or_einval(path: str, name: str, value: str, retry_later: bool) -> bool:
    """Write; on EINVAL return True (retry later) when allowed, else raise."""
    try:
        files.write_raw(path, name, value)
    except OSError as e:
        if e.errno == 22 and retry_later:
            return True
        raise files.error(e, f"write {value!r} to", files.join(path, name)) from e
    return False


def set_rt_v1(path: str, resources: dict) -> None:
    """The realtime period and runtime, in the order the kernel accepts."""
    cpu = section(resources, "cpu")
    period = integer(cpu, "realtimePeriod", "cpu")
    runtime = integer(cpu, "realtimeRuntime", "cpu")
    retry = period != 0 and _write_or_einval(path, "cpu.rt_period_us", str(period), runtime != 0)
    if runtime != 0:
        files.write(path, "cpu.rt_runtime_us", str(runtime))
        if retry:
            files.write(path, "cpu.rt_period_us", str(period))


def set_v1(path: str, resources: dict) -> None:
    cpu = section(resources, "cpu")
    if not cpu:
        return
    shares = integer(cpu, "shares", "cpu")
    if shares != 0:
        files.write(path, "cpu.shares", str(shares))
        got = files.read_uint(path, "cpu.shares")
        if shares > got:
            raise InvalidArgument(f"the maximum allowed cpu-shares is {got}")
        if shares < got:
            raise InvalidArgument(f"the minimum allowed cpu-shares is {got}")
    quota = integer(cpu, "quota", "cpu")
    period = integer(cpu, "period", "cpu")
    retry_period = period != 0 and _write_or_einval(path, "cpu.cfs_period_us", str(period), quota != 0)
    burst = optional(cpu, "burst", "cpu")
    retry_burst = False
    if burst is not None and files.exists(files.join(path, "cpu.cfs_burst_us")):
        # (a kernel without CFS burst: ignored, as runc does)
        retry_burst = _write_or_einval(path, "cpu.cfs_burst_us", str(burst), quota != 0)
    if quota != 0:
        files.write(path, "cpu.cfs_quota_us", str(quota))
        if retry_period:
            files.write(path, "cpu.cfs_period_us", str(period))
        if retry_burst:
            files.write(path, "cpu.cfs_burst_us", str(burst))
    idle = optional(cpu, "idle", "cpu")
    if idle is not None:
        files.write(path, "cpu.idle", str(idle))
    set_rt_v1(path, resources)


def is_set(resources: dict) -> bool:
    cpu = section(resources, "cpu")
    return (
        any(integer(cpu, k, "cpu") != 0 for k in ("shares", "quota", "period"))
        or cpu.get("idle") is not None
        or cpu.get("burst") is not None
    )


def set_v2(path: str, resources: dict) -> None:
    if not is_set(resources):
        return
    cpu = section(resources, "cpu")
    idle = optional(cpu, "idle", "cpu")
    if idle is not None:
        files.write(path, "cpu.idle", str(idle))
    weight = shares_to_weight(integer(cpu, "shares", "cpu"))
    if weight != 0:
        files.write(path, "cpu.weight", str(weight))
    quota = integer(cpu, "quota", "cpu")
    period = integer(cpu, "period", "cpu")
    burst = optional(cpu, "burst", "cpu")
    retry_burst = burst is not None and _write_or_einval(path, "cpu.max.burst", str(burst), quota != 0)
    if quota != 0 or period != 0:
        value = (str(quota) if quota > 0 else "max") + " " + str(period or 100000)
        files.write(path, "cpu.max", value)
        if retry_burst:
            files.write(path, "cpu.max.burst", str(burst))


def stats_v1(path: str, st: dict) -> None:
    text = files.read_opt(path, "cpu.stat")
    if text is None:
        return
    values = files.parse_key_values(text, files.join(path, "cpu.stat"))
    thr = st["cpu"]["throttling"]
    thr["periods"] = values.get("nr_periods", 0)
    thr["throttledPeriods"] = values.get("nr_throttled", 0)
    thr["throttledTime"] = values.get("throttled_time", 0)


def stats_v2(path: str, st: dict) -> None:
    text = files.read_opt(path, "cpu.stat")
    if text is None:
        return
    values = files.parse_key_values(text, files.join(path, "cpu.stat"))
    usage = st["cpu"]["usage"]
    usage["total"] = values.get("usage_usec", 0) * 1000
    usage["user"] = values.get("user_usec", 0) * 1000
    usage["kernel"] = values.get("system_usec", 0) * 1000
    thr = st["cpu"]["throttling"]
    thr["periods"] = values.get("nr_periods", 0)
    thr["throttledPeriods"] = values.get("nr_throttled", 0)
    thr["throttledTime"] = values.get("throttled_usec", 0) * 1000
