"""``run``: create + start; in the foreground, wait, forward signals, clean up.

In the foreground the runtime is the init's parent (and a child subreaper, so
processes the container leaves behind come back to it); it forwards every
signal it gets to the init, relays the terminal when the config asks for one,
and exits with the container's status (128+N for a signal), after deleting it
unless --keep.
"""

from __future__ import annotations

import os

from . import state as st


def main(ctx, command, opts, args) -> int:
    from .create import create
    from .start import start

    detach = opts.flag("detach")
    if not detach and not opts.flag("no-subreaper"):
        from ..kernel import libc
        from ..kernel.consts import PR_SET_CHILD_SUBREAPER

        libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    container, master = create(ctx, args[0], opts, detach=detach)
    try:
        forward = None if detach else _forward_signals(container.pid)
        start(ctx, container)
    except BaseException:
        from .delete import kill_and_destroy

        kill_and_destroy(ctx, container)
        raise
    if detach:
        return 0
    if master is not None:
        from .console import relay

        relay(master)
    from .delete import destroy  # loaded while the container runs, not after

    status = _wait(container.pid, forward)
    if not opts.flag("keep"):
        destroy(ctx, container)
    return status


def _forward_signals(pid: int) -> list[int]:
    """Forward catchable signals to the init; returns a list the handler appends to."""
    import _signal

    pending: list[int] = []

    def handler(signum, frame):
        if signum in (_signal.SIGCHLD, _signal.SIGWINCH):
            return  # SIGWINCH resizes the relayed terminal (console.relay), as with runc
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in range(1, 32):
        if signum in (_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD, 32, 33):
            continue
        try:
            _signal.signal(signum, handler)
        except (OSError, ValueError):
            pass
    return pending


def _wait(pid: int, forward) -> int:
    """Reap children until the init exits; return its exit status, shell-style."""
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
