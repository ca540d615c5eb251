"""The cpuacct controller (v1 only): CPU usage statistics.

Nothing to set. In v2 the same numbers come from cpu.stat (see :mod:`.cpu`).
cpuacct.stat counts USER_HZ ticks (100 per second on Linux).
"""

from __future__ import annotations

from ...errors import DockyardError
from . import files

NANOS_PER_TICK = 1_000_000_000 // 100


def _numbers(text: str, path: str) -> list[int]:
    return [files.parse_uint(v, path) for v in text.split()]


def stats_v1(path: str, st: dict) -> None:
    if not files.exists(path):
        return
    stat = files.read(path, "cpuacct.stat")
    fields = stat.split()
    if len(fields) < 4 or fields[0] != "user" or fields[2] != "system":
        raise DockyardError(f"unable to parse {path}/cpuacct.stat: malformed {stat!r}", path=path)
    usage = st["cpu"]["usage"]
    usage["user"] = files.parse_uint(fields[1]) * NANOS_PER_TICK
    usage["kernel"] = files.parse_uint(fields[3]) * NANOS_PER_TICK
    usage["total"] = files.read_uint(path, "cpuacct.usage")
    usage["percpu"] = _numbers(files.read(path, "cpuacct.usage_percpu"), path)
    all_text = files.read_opt(path, "cpuacct.usage_all")
    kernel: list[int] = []
    user: list[int] = []
    if all_text is not None:
        # "cpu user system" header, then one line per CPU
        for line in all_text.splitlines()[1:]:
            cols = line.split(" ")
            if len(cols) != 3:
                continue
            user.append(files.parse_uint(cols[1], path))
            kernel.append(files.parse_uint(cols[2], path))
    usage["percpu_kernel"] = kernel
    usage["percpu_user"] = user
