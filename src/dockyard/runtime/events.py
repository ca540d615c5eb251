"""``events``: container statistics (``--stats`` once, else every ``--interval``) and OOM events.

Each line is a JSON object ``{"type": "stats"|"oom", "id": ..., "data": ...}``
as runc writes them.
"""

from __future__ import annotations

import json
import sys
import time

from ..errors import Conflict, InvalidArgument
from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    if container.status() == st.STOPPED:
        raise Conflict(f"container with id {container.id} is not running")
    cgroup = container.cgroup()
    if opts.flag("stats"):
        _emit({"type": "stats", "id": container.id, "data": cgroup.stats()})
        return 0
    interval = parse_duration(opts.get("interval") or "5s")
    last_oom = cgroup.oom_kill_count()
    next_stats = time.monotonic()
    while container.status() != st.STOPPED:
        oom = cgroup.oom_kill_count()
        if oom > last_oom:
            last_oom = oom
            _emit({"type": "oom", "id": container.id})
        if time.monotonic() >= next_stats:
            _emit({"type": "stats", "id": container.id, "data": cgroup.stats()})
            next_stats += interval
        time.sleep(min(interval, 0.2))
    return 0


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(raw: str) -> float:
    """Go's time.ParseDuration for the forms people use (``5s``, ``1m30s``, ``250ms``)."""
    total, number, i = 0.0, "", 0
    if raw in ("0", ""):
        raise InvalidArgument("duration interval must be greater than 0")
    while i < len(raw):
        ch = raw[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if raw.startswith(u, i)), None)
        if unit is None or not number:
            raise InvalidArgument(f'time: invalid duration "{raw}"')
        total += float(number) * _UNITS[unit]
        number, i = "", i + len(unit)
    if number:
        raise InvalidArgument(f'time: missing unit in duration "{raw}"')
    if total <= 0:
        raise InvalidArgument("duration interval must be greater than 0")
    return total
