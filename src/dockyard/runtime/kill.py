"""``kill``: send a signal to the init (or, with --all, to every process of the container)."""

from __future__ import annotations

import os

from . import signals
from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    signum = signals.parse(args[1] if len(args) > 1 else "SIGTERM")
    signal_container(container, signum, all_processes=opts.flag("all"))
    return 0


def signal_container(container: st.Container, signum: int, all_processes: bool = False) -> None:
    status = container.status()
    if all_processes:
        if status == st.STOPPED and not container.cgroup().exists():
            return
        signal_all(container, signum)
        return
    st.check_can_signal(status)
    try:
        os.kill(container.pid, signum)
    except ProcessLookupError:
        from ..errors import Conflict

        raise Conflict("container not running") from None
    if status == st.PAUSED and signum == 9:
        container.cgroup().thaw()  # a frozen task only dies once thawed


def signal_all(container: st.Container, signum: int) -> None:
    """Signal every process in the container's cgroup (frozen first, so none can fork)."""
    cgroup = container.cgroup()
    was_frozen = cgroup.frozen()
    if signum == 9 and not was_frozen:
        try:
            cgroup.freeze()
        except Exception:
            pass
    for pid in cgroup.pids():
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    if signum == 9:
        try:
            cgroup.thaw()
        except Exception:
            pass
