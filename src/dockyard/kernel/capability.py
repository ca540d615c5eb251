"""Process capabilities: capget/capset, the bounding and ambient sets, keepcaps.

Masks are plain 64-bit ints, bit N standing for capability N. Every function
acts on the calling process and raises OSError (with errno) on failure; the
policy of which failures matter belongs to the caller.
"""

from __future__ import annotations

from . import ffi
from .consts import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    PR_SET_KEEPCAPS,
    SYS_capget,
    SYS_capset,
)
from .libc import check, prctl, syscall

PR_GET_KEEPCAPS = 7
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_LOWER = 3

# The 64-bit interface: two data structs, low 32 capabilities first.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_MASK32 = 0xFFFFFFFF

_last_cap: int | None = None


class _Header(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class _Data(ffi.Structure):
    _fields_ = [
        ("effective", ffi.c_uint32),
        ("permitted", ffi.c_uint32),
        ("inheritable", ffi.c_uint32),
    ]


def last_cap() -> int:
    """The highest capability number this kernel knows (found once, then cached).

    Read from /proc/sys/kernel/cap_last_cap; where /proc is not mounted (a
    container's init after pivot_root), probed with PR_CAPBSET_READ, which
    fails with EINVAL past the last capability.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            _last_cap = _probe_last_cap()
    return _last_cap


def _probe_last_cap() -> int:
    cap = 0
    while True:
        try:
            prctl(PR_CAPBSET_READ, cap + 1)
        except OSError:
            return cap
        cap += 1


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) masks of ``pid`` (0: this thread)."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_Data * 2)()
    check(syscall(SYS_capget, ffi.byref(hdr), data), "capget")
    lo, hi = data[0], data[1]
    return (
        lo.effective | hi.effective << 32,
        lo.permitted | hi.permitted << 32,
        lo.inheritable | hi.inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) on this thread: replace its effective, permitted and inheritable sets."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)(
        _Data(effective & _MASK32, permitted & _MASK32, inheritable & _MASK32),
        _Data(effective >> 32 & _MASK32, permitted >> 32 & _MASK32, inheritable >> 32 & _MASK32),
    )
    check(syscall(SYS_capset, ffi.byref(hdr), data), "capset")


def bounding_has(cap: int) -> bool:
    """Whether ``cap`` is in this thread's bounding set."""
    return prctl(PR_CAPBSET_READ, cap) == 1


def bounding_drop(cap: int) -> None:
    """Remove ``cap`` from the bounding set (needs CAP_SETPCAP; EINVAL if unknown)."""
    prctl(PR_CAPBSET_DROP, cap)


def ambient_clear() -> None:
    """Empty the ambient set."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def ambient_raise(cap: int) -> None:
    """Add ``cap`` to the ambient set (it must be permitted and inheritable: else EPERM)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def ambient_has(cap: int) -> bool:
    """Whether ``cap`` is in the ambient set."""
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap) == 1


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across a switch away from uid 0."""
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def get_keepcaps() -> bool:
    return prctl(PR_GET_KEEPCAPS) == 1
