"""Foreign calls into the process's own libc through the bare ``_ctypes`` extension.

The ``ctypes`` package builds some forty classes and imports ``struct``,
``types`` and ``ctypes._endian`` on import: about 2 ms on the benchmark VM,
on the path of every ``dockyard-runtime create``/``run``. The runtime needs
only a handful of scalar types, functions looked up in libc and, for
capget/capset, one structure; this module defines exactly those on top of
``_ctypes`` (the extension ``ctypes`` itself wraps). Modules that need more
of ctypes (seccomp, nftables) import ctypes itself.
"""

from __future__ import annotations

import _ctypes

get_errno = _ctypes.get_errno
byref = _ctypes.byref
addressof = _ctypes.addressof
Structure = _ctypes.Structure


class c_int(_ctypes._SimpleCData):  # type: ignore[name-defined]  # noqa: N801  (ctypes' names)
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):  # type: ignore[name-defined]  # noqa: N801
    _type_ = "I"


class c_long(_ctypes._SimpleCData):  # type: ignore[name-defined]  # noqa: N801
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):  # type: ignore[name-defined]  # noqa: N801
    _type_ = "L"


class c_char(_ctypes._SimpleCData):  # type: ignore[name-defined]  # noqa: N801
    _type_ = "c"


c_uint32 = c_uint


class _IntFunc(_ctypes.CFuncPtr):  # type: ignore[name-defined]
    """A C function returning int; errno is saved for get_errno()."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _LongFunc(_ctypes.CFuncPtr):  # type: ignore[name-defined]
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


class _PyLongFunc(_ctypes.CFuncPtr):  # type: ignore[name-defined]
    """As _LongFunc, but called with the GIL held (ctypes' PyDLL)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = c_long


_self = _ctypes.dlopen(None)  # type: ignore[arg-type]  # the executable and every library it has loaded (libc included)


def function(name: str, *, restype_long: bool = False, hold_gil: bool = False):
    """The C function ``name`` of this process: ints, bytes and None convert as in ctypes."""
    cls = _PyLongFunc if hold_gil else (_LongFunc if restype_long else _IntFunc)
    return cls(_ctypes.dlsym(_self, name))
