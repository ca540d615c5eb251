"""prctl(PR_SET_CHILD_SUBREAPER) for the container shim, without the full libc module.

The container shim must adopt the container's init when the runtime that
forked it exits; that takes a subreaper. The shim is long-lived and kept
memory-lean, so this one call goes straight through :mod:`.ffi`.
"""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> None:
    """Make orphaned descendants of this process its children (not init's)."""
    from . import ffi

    zero = ffi.c_ulong(0)
    if ffi.function("prctl")(PR_SET_CHILD_SUBREAPER, ffi.c_ulong(1), zero, zero, zero) != 0:
        err = ffi.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")
