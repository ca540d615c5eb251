"""Run nft scripts through libnftables (ctypes), without spawning the ``nft`` command.

A script given to ``run`` is one netlink transaction: every command in it takes effect together
or none does, which is what lets the firewall module replace its whole table atomically.
Each call makes a fresh context in the calling thread, so its netlink socket lives in that
thread's network namespace (wrap calls in ``kernel.netns.run_in`` to act on another one).
Calls are serialised: libnftables keeps some state process-wide and is not documented as
thread-safe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from dockyard.errors import DockyardError, Unavailable

LIBRARY = "libnftables.so.1"
NFT_CTX_DEFAULT = 0

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


class NftError(DockyardError):
    """nft refused a script; the message is nft's own error text."""


def _load() -> ctypes.CDLL:
    """The library with its prototypes declared; loaded once, on first use."""
    global _lib
    if _lib is not None:
        return _lib
    name = LIBRARY
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        found = ctypes.util.find_library("nftables")
        if found is None:
            raise Unavailable(f"{LIBRARY} not found: install nftables (libnftables1)") from None
        lib = ctypes.CDLL(found, use_errno=True)
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for fn, res, args in (
        ("nft_ctx_new", vp, [ctypes.c_uint32]),
        ("nft_ctx_free", None, [vp]),
        ("nft_ctx_buffer_output", ci, [vp]),
        ("nft_ctx_buffer_error", ci, [vp]),
        ("nft_ctx_get_output_buffer", cp, [vp]),
        ("nft_ctx_get_error_buffer", cp, [vp]),
        ("nft_run_cmd_from_buffer", ci, [vp, cp]),
    ):
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    _lib = lib
    return lib


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace")


def run(script: str) -> str:
    """Run an nft script as one transaction and return what nft printed (e.g. for ``list``).

    Raises NftError with nft's error text when the script is refused (nothing is applied then),
    Unavailable when libnftables is missing or a context cannot be made.
    """
    lib = _load()
    with _lock:
        ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise Unavailable("nft_ctx_new failed")
        try:
            if lib.nft_ctx_buffer_output(ctx) or lib.nft_ctx_buffer_error(ctx):
                raise Unavailable("libnftables: cannot buffer output")
            rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = _text(lib.nft_ctx_get_output_buffer(ctx))
            err = _text(lib.nft_ctx_get_error_buffer(ctx))
        finally:
            lib.nft_ctx_free(ctx)
    if rc != 0:
        raise NftError(f"nft: {err.strip() or 'command failed'}")
    return out
