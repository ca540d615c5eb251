"""``delete``: remove what create made (cgroup, state), then run poststop hooks."""

from __future__ import annotations

import os
import time

from ..errors import Conflict, DockyardError, NotFound
from . import hooks
from . import state as st


def main(ctx, command, opts, args) -> int:
    force = opts.flag("force")
    try:
        container = st.load(ctx.root, args[0])
    except NotFound:
        # An aborted create can leave a directory without state.json.
        st.remove_dir(os.path.join(ctx.root, args[0]))
        if force:
            return 0
        raise
    status = container.status()
    if status == st.CREATING:
        raise Conflict(f"cannot delete container {container.id} that is being created")
    if status == st.STOPPED:
        destroy(ctx, container)
    elif status == st.CREATED or force:
        kill_and_destroy(ctx, container)
    else:
        raise Conflict(f"cannot delete container {container.id} that is not stopped: {status}")
    return 0


def kill_and_destroy(ctx, container: st.Container) -> None:
    from .kill import signal_container

    signal_container(container, 9)
    for _ in range(100):
        if not container.init_alive():
            break
        time.sleep(0.1)
    else:
        raise Conflict("container init still running")
    destroy(ctx, container)


def destroy(ctx, container: st.Container) -> None:
    """Kill leftovers (when the container shares a pid namespace), remove cgroup and state."""
    namespaces = (container.config.get("linux") or {}).get("namespaces") or []
    private_pid = any(ns["type"] == "pid" and not ns.get("path") for ns in namespaces)
    cgroup = container.cgroup() if container.data.get("cgroup") else None
    if cgroup is not None:
        # Without a recorded init (create was killed midway) an orphaned init may sit in the cgroup.
        if not private_pid or not container.pid:
            from .kill import signal_all

            try:
                signal_all(container, 9)
            except (OSError, DockyardError) as e:
                ctx.log.warning(f"signal all processes: {e}")
        cgroup.destroy()
    state = container.oci_state(st.STOPPED)
    st.remove_dir(container.dir)
    try:
        hooks.run_hooks(container.config, "poststop", state)
    except hooks.HookError as e:
        ctx.log.warning(str(e))
