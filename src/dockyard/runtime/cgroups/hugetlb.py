"""The hugetlb controller: ``hugepageLimits[{pageSize, limit}]``.

v1 writes hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max (size as
the kernel names it: "2MB", "1GB"). Statistics cover every page size the
kernel supports (from /sys/kernel/mm/hugepages).
"""

from __future__ import annotations

import os

from ...errors import InvalidArgument
from . import files
from .values import integer, items, string

HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
_sizes: list[str] | None = None


def page_sizes() -> list[str]:
    """The kernel's huge page sizes in cgroup notation, e.g. ["1GB", "2MB"]."""
    global _sizes
    if _sizes is None:
        try:
            names = os.listdir(HUGEPAGES_DIR)
        except OSError:
            names = []
        sizes = []
        for name in sorted(names):
            if not name.startswith("hugepages-") or not name.endswith("kB"):
                continue
            try:
                kb = int(name[len("hugepages-") : -2])
            except ValueError:
                continue
            if kb >= 1 << 20:
                sizes.append(f"{kb >> 20}GB")
            elif kb >= 1 << 10:
                sizes.append(f"{kb >> 10}MB")
            else:
                sizes.append(f"{kb}KB")
        _sizes = sizes
    return _sizes


def _limits(resources: dict) -> list[tuple[str, int]]:
    out = []
    for entry in items(resources, "hugepageLimits"):
        if not isinstance(entry, dict):
            raise InvalidArgument("hugepageLimits entries must be objects")
        size = string(entry, "pageSize", "hugepageLimits")
        if not size or "/" in size:
            raise InvalidArgument(f"invalid hugepageLimits pageSize {size!r}")
        out.append((size, integer(entry, "limit", "hugepageLimits")))
    return out


def is_set(resources: dict) -> bool:
    return bool(_limits(resources))


def set_v1(path: str, resources: dict) -> None:
    for size, limit in _limits(resources):
        files.write(path, f"hugetlb.{size}.limit_in_bytes", str(limit))


def set_v2(path: str, resources: dict) -> None:
    for size, limit in _limits(resources):
        files.write(path, f"hugetlb.{size}.max", str(limit))


def stats_v1(path: str, st: dict) -> None:
    if not files.exists(path):
        return
    for size in page_sizes():
        prefix = "hugetlb." + size
        st["hugetlb"][size] = {
            "usage": files.read_uint(path, prefix + ".usage_in_bytes"),
            "max": files.read_uint(path, prefix + ".max_usage_in_bytes"),
            "failcnt": files.read_uint(path, prefix + ".failcnt"),
        }


def stats_v2(path: str, st: dict) -> None:
    for size in page_sizes():
        prefix = "hugetlb." + size
        usage = files.read_uint_opt(path, prefix + ".current")
        events = files.read_opt(path, prefix + ".events")
        if usage is None or events is None:
            return  # controller not enabled here
        st["hugetlb"][size] = {"usage": usage, "max": 0, "failcnt": files.value_by_key(events, "max")}
