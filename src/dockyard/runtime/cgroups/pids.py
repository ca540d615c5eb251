"""The pids controller: ``pids.limit`` -> pids.max.

0 leaves the limit alone. v1 writes "max" for any negative limit, v2 only
for -1 (runc's conversions; other negatives are refused by the kernel).
Stats report an unlimited pids.max as limit 0, as runc does.
"""

from __future__ import annotations

from . import files
from .values import integer, section


def _limit(resources: dict) -> int:
    return integer(section(resources, "pids"), "limit", "pids")


def set_v1(path: str, resources: dict) -> None:
    limit = _limit(resources)
    if limit != 0:
        files.write(path, "pids.max", str(limit) if limit > 0 else "max")


def is_set(resources: dict) -> bool:
    return _limit(resources) != 0


def set_v2(path: str, resources: dict) -> None:
    limit = _limit(resources)
    if limit != 0:
        files.write(path, "pids.max", "max" if limit == -1 else str(limit))


def _limit_stat(path: str) -> int:
    limit = files.read_uint(path, "pids.max")
    return 0 if limit == files.MAX_UINT64 else limit


def stats_v1(path: str, st: dict) -> None:
    if not files.exists(path):
        return
    st["pids"]["current"] = files.read_uint(path, "pids.current")
    st["pids"]["limit"] = _limit_stat(path)


def stats_v2(path: str, st: dict) -> None:
    current = files.read_uint_opt(path, "pids.current")
    if current is None:
        # controller not enabled here: count the processes instead
        try:
            text = files.read_raw(files.join(path, "cgroup.procs"))
        except OSError as e:
            if e.errno != 95:  # EOPNOTSUPP: a threaded cgroup
                raise files.error(e, "read", files.join(path, "cgroup.procs")) from e
            text = files.read(path, "cgroup.threads")
        st["pids"]["current"] = text.count("\n")
        st["pids"]["limit"] = 0
        return
    st["pids"]["current"] = current
    st["pids"]["limit"] = _limit_stat(path)
