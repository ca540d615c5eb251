"""prctl(PR_SET_CHILD_SUBREAPER) through the bare ``_ctypes`` extension.

The container shim must adopt the container's init when the runtime that
forked it exits; that takes a subreaper. ``kernel/libc.py`` loads the full
``ctypes`` package, which costs the long-lived, memory-lean shim about half a
megabyte more than this one-call path.
"""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> None:
    """Make orphaned descendants of this process its children (not init's)."""
    import _ctypes

    class _Int(_ctypes._SimpleCData):  # type: ignore[name-defined]
        _type_ = "i"

    class _ULong(_ctypes._SimpleCData):  # type: ignore[name-defined]
        _type_ = "L"

    class _Func(_ctypes.CFuncPtr):  # type: ignore[name-defined]
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = _Int

    prctl = _Func(_ctypes.dlsym(_ctypes.dlopen(None), "prctl"))  # type: ignore[arg-type]
    zero = _ULong(0)
    if prctl(_Int(PR_SET_CHILD_SUBREAPER), _ULong(1), zero, zero, zero) != 0:
        err = _ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")
