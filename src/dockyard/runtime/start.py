"""``start``: let a created container's init exec the user process."""

from __future__ import annotations

import os
import select

from ..errors import Conflict
from . import hooks
from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    start(ctx, container)
    return 0


def start(ctx, container: st.Container) -> None:
    """Open exec.fifo (releasing the init), consume its byte, run poststart hooks."""
    st.check_can_start(container.status())
    fifo = container.fifo_path
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict("cannot start a container that has stopped") from None
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                if os.read(fd, 1) != b"0":
                    raise Conflict("container process is already dead")
                break
            if not container.init_alive():
                raise Conflict("container process is already dead")
    finally:
        os.close(fd)
    os.unlink(fifo)
    try:
        hooks.run_hooks(container.config, "poststart", container.oci_state("running"))
    except hooks.HookError as e:
        ctx.log.warning(str(e))
