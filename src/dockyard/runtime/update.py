"""``update``: change a running container's resources (``-r`` JSON or flags)."""

from __future__ import annotations

import json
import sys

from ..errors import Conflict, InvalidArgument
from . import state as st

# flag -> (resources section, key, parser)
_FLAGS = {
    "blkio-weight": ("blockIO", "weight", int),
    "cpu-period": ("cpu", "period", int), "cpu-quota": ("cpu", "quota", int), "cpu-burst": ("cpu", "burst", int),
    "cpu-share": ("cpu", "shares", int), "cpu-rt-period": ("cpu", "realtimePeriod", int),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", int), "cpuset-cpus": ("cpu", "cpus", str),
    "cpuset-mems": ("cpu", "mems", str), "memory": ("memory", "limit", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"), "memory-swap": ("memory", "swap", "bytes"),
    "kernel-memory": ("memory", "kernel", "bytes"), "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "pids-limit": ("pids", "limit", int),
}


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    if container.status() == st.STOPPED:
        raise Conflict("container not running")
    resources = _from_json(opts["resources"]) if opts.get("resources") else {}
    for flag, (section, key, kind) in _FLAGS.items():
        if flag in opts:
            resources.setdefault(section, {})[key] = _parse(opts[flag], kind, flag)
    if opts.get("l3-cache-schema") or opts.get("mem-bw-schema"):
        raise InvalidArgument("Intel RDT is not supported by dockyard-runtime")
    from .cgroups import create_resources

    linux = container.config.setdefault("linux", {})
    merged = dict(linux.get("resources") or {})
    for section, values in resources.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    # The whole merged set goes to the cgroup: a new quota keeps the old period,
    # a new memory limit the old swap, as runc does.
    container.cgroup().set(create_resources({**linux, "resources": merged}))
    linux["resources"] = merged
    container.save()
    return 0


def _from_json(source: str) -> dict:
    raw = sys.stdin.read() if source == "-" else open(source).read()
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid resources JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidArgument("resources must be a JSON object")
    return value


def _parse(raw: str, kind, flag: str):
    if kind == "bytes":
        return parse_bytes(raw, flag)
    try:
        return kind(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for {flag}: {raw}") from None


def parse_bytes(raw: str, flag: str = "value") -> int:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``1024``, ``-1``."""
    text = raw.strip().lower()
    if text == "-1":
        return -1
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    number = text.rstrip("bkmgtpi")
    suffix = text[len(number):].rstrip("b").rstrip("i") or "b"
    try:
        return int(float(number) * units[suffix])
    except (ValueError, KeyError):
        raise InvalidArgument(f"invalid value for {flag}: {raw}") from None
