"""The process's libc, with errno turned into OSError.

This module and its siblings are the only places in Dockyard that call into C.
Calls go through :mod:`.ffi` (the bare ``_ctypes`` extension): loading the
``ctypes`` package would cost a few milliseconds on the runtime's start path.
"""

from __future__ import annotations

import os

from . import ffi

syscall = ffi.function("syscall", restype_long=True)
_mount = ffi.function("mount")
_umount2 = ffi.function("umount2")
_unshare = ffi.function("unshare")
_setns = ffi.function("setns")
_sethostname = ffi.function("sethostname")
_setdomainname = ffi.function("setdomainname")
_prctl = ffi.function("prctl")
_ioctl = ffi.function("ioctl")
_setrlimit = ffi.function("setrlimit")
_socket = ffi.function("socket")
_RLIM = ffi.c_ulong * 2
_U64 = (1 << 64) - 1


def check(ret: int, what: str, path: str | None = None) -> int:
    """Return ``ret``, or raise OSError with errno when it signals failure."""
    if ret == -1:
        err = ffi.get_errno()
        if path is not None:
            raise OSError(err, f"{what} {path}: {os.strerror(err)}", path)
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s.encode() if isinstance(s, str) else s


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(_mount(_b(source), _b(target), _b(fstype), ffi.c_ulong(flags), _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    check(_umount2(_b(target), flags), "umount", target)


def unshare(flags: int) -> None:
    check(_unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(_setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    from .consts import SYS_pivot_root

    check(syscall(SYS_pivot_root, _b(new_root), _b(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    check(_sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(_setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(
        _prctl(option, ffi.c_ulong(arg2), ffi.c_ulong(arg3), ffi.c_ulong(arg4), ffi.c_ulong(arg5)),
        "prctl",
    )


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """setrlimit(2); a value of 2^64-1 (or -1) is RLIM_INFINITY."""
    check(_setrlimit(resource, _RLIM(soft & _U64, hard & _U64)), "setrlimit")


def ioctl_int(fd: int, request: int, value: int | None = None) -> int:
    """ioctl with an int argument passed by pointer (None: read it back)."""
    arg = ffi.c_int(value or 0)
    check(_ioctl(fd, ffi.c_ulong(request), ffi.byref(arg)), "ioctl")
    return arg.value


def ioctl_plain(fd: int, request: int, value: int = 0) -> None:
    check(_ioctl(fd, ffi.c_ulong(request), ffi.c_ulong(value)), "ioctl")


def ioctl_buffer(fd: int, request: int, data: bytes) -> bytes:
    """ioctl with a pointer to a copy of ``data``; returns the buffer as the kernel left it."""
    buf = (ffi.c_char * len(data)).from_buffer_copy(data)
    check(_ioctl(fd, ffi.c_ulong(request), buf), "ioctl")
    return bytes(buf)


def socket(family: int, kind: int, protocol: int = 0) -> int:
    """socket(2), close-on-exec: a bare file descriptor."""
    from .consts import SOCK_CLOEXEC

    return check(_socket(family, kind | SOCK_CLOEXEC, protocol), "socket")


def clone(flags: int) -> int:
    """Fork-like clone(2) with namespace flags: returns 0 in the child.

    The interpreter is prepared and restored exactly as os.fork() does, so the
    child is a normal single-threaded Python process, already inside the new
    namespaces (in a new PID namespace it is PID 1). The calls keep the GIL
    held across them (ctypes' PyDLL convention).
    """
    from .consts import SIGCHLD, SYS_clone

    _before_fork()
    pid = _pysyscall(SYS_clone, ffi.c_ulong(flags | SIGCHLD), None, None, None, None)
    if pid == 0:
        _after_fork_child()
        return 0
    err = ffi.get_errno()
    _after_fork_parent()
    if pid == -1:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


_pysyscall = ffi.function("syscall", hold_gil=True)
_before_fork = ffi.function("PyOS_BeforeFork", hold_gil=True)
_after_fork_child = ffi.function("PyOS_AfterFork_Child", hold_gil=True)
_after_fork_parent = ffi.function("PyOS_AfterFork_Parent", hold_gil=True)
