"""``pause`` and ``resume``: freeze and thaw every process of the container."""

from __future__ import annotations

from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    status = container.status()
    if command == "pause":
        st.check_can_pause(status)
        container.cgroup().freeze()
    else:
        st.check_can_resume(status)
        container.cgroup().thaw()
    return 0
