"""``ps``: the container's processes, through ps(1) filtered to its cgroup, or as JSON pids."""

from __future__ import annotations

import json
import subprocess

from ..errors import InvalidArgument
from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    fmt = opts.get("format") or "table"
    pids = container.cgroup().pids()
    if fmt == "json":
        print(json.dumps(pids, separators=(",", ":")))
        return 0
    if fmt != "table":
        raise InvalidArgument(f"invalid format option: {fmt}")
    ps_args = args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    header, rows = lines[0], lines[1:]
    try:
        col = header.split().index("PID")
    except ValueError:
        raise InvalidArgument("couldn't find PID field in ps output") from None
    print(header)
    wanted = {str(p) for p in pids}
    for row in rows:
        fields = row.split()
        if len(fields) > col and fields[col] in wanted:
            print(row)
    return 0
