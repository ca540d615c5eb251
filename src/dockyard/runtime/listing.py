"""``list``: every container under --root, as a table, JSON or bare IDs."""

from __future__ import annotations

import os

from ..errors import InvalidArgument
from ..oci import jsonio
from . import state as st


def main(ctx, command, opts, args) -> int:
    fmt = opts.get("format") or "table"
    if fmt not in ("table", "json"):
        raise InvalidArgument(f"invalid format option: {fmt}")
    rows = []
    for cid in st.list_ids(ctx.root):
        try:
            container = st.load(ctx.root, cid)
        except Exception:
            continue  # a container being created or deleted right now
        row = container.oci_state()
        row["owner"] = _owner(container.dir)
        rows.append(row)
    if opts.flag("quiet"):
        for row in rows:
            print(row["id"])
    elif fmt == "json":
        print(jsonio.dumps(rows or None))
    else:
        _table(rows)
    return 0


def _owner(path: str) -> str:
    import pwd

    try:
        uid = os.stat(path).st_uid
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return "#?"


def _table(rows: list[dict]) -> None:
    """Go tabwriter with minwidth 12, padding 3, as runc formats it."""
    header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    lines = [header] + [[r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]] for r in rows]
    widths = [max(12, max(len(line[i]) for line in lines) + 3) for i in range(len(header) - 1)]
    for line in lines:
        print("".join(cell.ljust(w) for cell, w in zip(line, widths)) + line[-1])
