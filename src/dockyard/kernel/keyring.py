"""Session keyrings (keyctl(2))."""

from __future__ import annotations

import errno

from . import libc
from .consts import SYS_keyctl

KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session(name: str) -> int:
    """Join (creating it) the session keyring ``name``; 0 when keyrings are unsupported."""
    ret = libc.syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.encode())
    if ret == -1:
        from .ffi import get_errno

        if get_errno() in (errno.ENOSYS, errno.EACCES, errno.EPERM):
            return 0
        libc.check(-1, "keyctl(join session keyring)")
    return int(ret)
