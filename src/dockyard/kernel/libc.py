"""The process's libc, through ctypes, with errno turned into OSError.

This module and its siblings are the only places in Dockyard that call into C.
Loading ctypes costs a few milliseconds, so nothing imports this module unless
it is about to make a syscall Python's ``os`` module does not offer.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
# A PyDLL keeps the GIL held across the call: needed around clone(2), where the
# child must wake up with the interpreter in the state os.fork() leaves it in.
_pyapi = ctypes.pythonapi

syscall = _libc.syscall
syscall.restype = ctypes.c_long


def check(ret: int, what: str, path: str | None = None) -> int:
    """Return ``ret``, or raise OSError with errno when it signals failure."""
    if ret == -1:
        err = ctypes.get_errno()
        if path is not None:
            raise OSError(err, f"{what} {path}: {os.strerror(err)}", path)
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s.encode() if isinstance(s, str) else s


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    check(_libc.umount2(_b(target), flags), "umount", target)


def unshare(flags: int) -> None:
    check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(_libc.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    from .consts import SYS_pivot_root

    check(syscall(SYS_pivot_root, _b(new_root), _b(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(
        _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)),
        "prctl",
    )


def ioctl_int(fd: int, request: int, value: int | None = None) -> int:
    """ioctl with an int argument passed by pointer (None: read it back)."""
    arg = ctypes.c_int(value or 0)
    check(_libc.ioctl(fd, ctypes.c_ulong(request), ctypes.byref(arg)), "ioctl")
    return arg.value


def ioctl_plain(fd: int, request: int, value: int = 0) -> None:
    check(_libc.ioctl(fd, ctypes.c_ulong(request), ctypes.c_ulong(value)), "ioctl")


def clone(flags: int) -> int:
    """Fork-like clone(2) with namespace flags: returns 0 in the child.

    The interpreter is prepared and restored exactly as os.fork() does, so the
    child is a normal single-threaded Python process, already inside the new
    namespaces (in a new PID namespace it is PID 1). The call goes through a
    PyDLL handle, which keeps the GIL held across it.
    """
    from .consts import SIGCHLD, SYS_clone

    _pyapi.PyOS_BeforeFork()
    pid = _pysyscall(SYS_clone, ctypes.c_ulong(flags | SIGCHLD), None, None, None, None)
    if pid == 0:
        _pyapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _pyapi.PyOS_AfterFork_Parent()
    if pid == -1:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


_pysyscall = ctypes.PyDLL(None, use_errno=True).syscall
_pysyscall.restype = ctypes.c_long
