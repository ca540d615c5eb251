"""The cpuset controller: ``cpus`` -> cpuset.cpus, ``mems`` -> cpuset.mems.

v1 creates cpusets with empty cpus and mems, and an empty cpuset accepts no
process, so :func:`apply_v1` first gives every new level between the mount
and the container's dir the cpus/mems of its parent (copying only into
empty files, never inheriting on purpose, which would clash with
``cpuset.cpu_exclusive``), then writes the requested values into the
container's dir, then fills what is still empty from the parent. v2 fills
nothing itself: empty means "inherit".
"""

from __future__ import annotations

import os

from ...errors import DockyardError
from . import files
from .values import section, string


def _mkdir(path: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError as e:
        raise files.error(e, "mkdir", path) from e


def _empty(text: str) -> bool:
    return text == "" or text == "\n"


def _copy_if_empty(current: str, parent: str) -> None:
    cpus = files.read(current, "cpuset.cpus")
    mems = files.read(current, "cpuset.mems")
    if _empty(cpus):
        files.write(current, "cpuset.cpus", files.read(parent, "cpuset.cpus"))
    if _empty(mems):
        files.write(current, "cpuset.mems", files.read(parent, "cpuset.mems"))


def apply_v1(path: str, mountpoint: str, resources: dict | None) -> None:
    """Create ``path`` (and parents) with usable cpus and mems."""
    parent = path.rsplit("/", 1)[0]
    if path.startswith(mountpoint + "/"):
        current = mountpoint
        for part in parent[len(mountpoint) + 1 :].split("/") if parent != mountpoint else ():
            child = current + "/" + part
            _mkdir(child)
            _copy_if_empty(child, current)
            current = child
    _mkdir(path)
    if resources:
        set_v1(path, resources)
    _copy_if_empty(path, parent)


def set_v1(path: str, resources: dict) -> None:
    cpu = section(resources, "cpu")
    cpus = string(cpu, "cpus", "cpu")
    mems = string(cpu, "mems", "cpu")
    if cpus:
        files.write(path, "cpuset.cpus", cpus)
    if mems:
        files.write(path, "cpuset.mems", mems)


set_v2 = set_v1


def is_set(resources: dict) -> bool:
    cpu = section(resources, "cpu")
    return bool(string(cpu, "cpus", "cpu") or string(cpu, "mems", "cpu"))


def parse_list(text: str, path: str = "") -> list[int]:
    """A cpu/node list such as ``0-3,8`` as [0, 1, 2, 3, 8]."""
    text = text.strip()
    if not text:
        raise DockyardError(f"unable to parse {path}: empty file", path=path)
    out: list[int] = []
    for item in text.split(","):
        lo, sep, hi = item.partition("-")
        try:
            if not sep:
                out.append(int(item))
                continue
            if "-" in hi:
                raise ValueError("extra dash")
            a, b = int(lo), int(hi)
        except ValueError:
            raise DockyardError(f"unable to parse {path}: bad range {item!r}", path=path) from None
        if a > b:
            raise DockyardError(f"unable to parse {path}: invalid values, min > max", path=path)
        out.extend(range(a, b + 1))
    return out


_STAT_FILES = (
    ("cpu_exclusive", "cpuset.cpu_exclusive"),
    ("mem_hardwall", "cpuset.mem_hardwall"),
    ("mem_exclusive", "cpuset.mem_exclusive"),
    ("memory_migrate", "cpuset.memory_migrate"),
    ("memory_spread_page", "cpuset.memory_spread_page"),
    ("memory_spread_slab", "cpuset.memory_spread_slab"),
    ("memory_pressure", "cpuset.memory_pressure"),
    ("sched_load_balance", "cpuset.sched_load_balance"),
)


def stats_v1(path: str, st: dict) -> None:
    out = st["cpuset"]
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        text = files.read_opt(path, name)
        if text is not None:
            out[key] = parse_list(text, files.join(path, name))
    for key, name in _STAT_FILES:
        value = files.read_uint_opt(path, name)
        if value is not None:
            out[key] = value
    text = files.read_opt(path, "cpuset.sched_relax_domain_level")
    if text is not None:
        out["sched_relax_domain_level"] = files.parse_int(text, path)
