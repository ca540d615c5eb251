"""Wire format between dockyardd and a container's shim (shared by both sides).

Transport: the shim listens on a unix stream socket (``socket`` in shim.json).
Each connection carries ONE request: the client sends one JSON object on one
line (``\\n``-terminated); the shim answers one JSON line, either
``{"ok": true, ...}`` or ``{"ok": false, "error": "<message>"}``. Some
operations then turn the connection into a byte stream.

Operations (``op``):

- ``start``: run ``<runtime> <args> start <id>``. Reply ``{"ok": true}``.
- ``attach`` ``{"stdin": b, "stdout": b, "stderr": b}``: reply ok, then the
  stream. Output as it is produced: raw bytes with a tty; otherwise Docker's
  multiplexed frames: 8-byte header ``[stream, 0, 0, 0, uint32 BE length]``
  (stream 1 = stdout, 2 = stderr) + payload. Bytes sent by the client go to the
  container's stdin (only with open_stdin and ``stdin`` requested). A client
  half-close closes the container's stdin when stdin_once is set. The shim
  closes the stream once the init process exited and its output is drained.
- ``wait``: reply when init has exited:
  ``{"ok": true, "exit_code": N, "exited_at": "<RFC3339Nano>"}``;
  a signal death is reported as 128 + signo.
- ``state``: ``{"ok": true, "status": "created"|"running"|"stopped", "pid": N,
  "exit_code": N|null, "exited_at": str|null}``.
- ``resize`` ``{"height": h, "width": w, "exec_id": optional}``: TIOCSWINSZ on
  the pty master; an error without a tty.
- ``exec`` ``{"exec_id": X, "process": {OCI process}, "detach": b, "stdin": b}``:
  run ``<runtime> <args> exec --process F --detach --pid-file P ...``; reply
  ``{"ok": true, "pid": N}``; unless ``detach`` the connection then becomes that
  exec's stream, framed exactly like attach (exec output is not logged).
- ``exec_wait`` ``{"exec_id": X}``: reply ``{"ok": true, "exit_code": N}`` once
  that exec has exited.
- ``shutdown``: when init has exited, reply ok and the shim exits; an error
  while it still runs.

The JSON codec here goes straight to the ``_json`` accelerator: importing the
``json`` package pulls in ``re`` and costs the shim over a megabyte of RSS.
"""

from __future__ import annotations

import struct
import time

TYPE_CHECKING = False  # typing imports re: keep it out of the shim at run time
if TYPE_CHECKING:
    from typing import Any

STDOUT = 1
STDERR = 2
HEADER = struct.Struct(">BxxxI")

try:
    import _json

    class _Ctx:
        """What the C scanner reads from a JSONDecoder: the default behaviour."""

        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float
        memo: dict[str, str] = {}

    def _default(obj: Any) -> Any:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    _scan = _json.make_scanner(_Ctx())  # type: ignore[arg-type]
    _encode = _json.make_encoder(None, _default, _json.encode_basestring, None, ":", ",", False, False, True)

    def dumps(obj: Any) -> str:
        """Compact JSON, non-ASCII kept as is (the json module's ensure_ascii=False)."""
        return "".join(_encode(obj, 0))

    def loads(text: str | bytes) -> Any:
        """Parse one JSON document; ValueError when malformed."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode()
        text = text.strip(" \t\r\n")
        try:
            obj, end = _scan(text, 0)
        except StopIteration as e:
            raise ValueError(f"invalid JSON at offset {e.value}") from None
        except Exception as e:  # the C scanner's own error type lives in json.decoder
            raise ValueError(f"invalid JSON: {e}") from None
        if end != len(text):
            raise ValueError(f"extra data at offset {end}")
        return obj

except ImportError:  # pragma: no cover - CPython always has _json
    import json as _jsonmod

    def dumps(obj: Any) -> str:
        return _jsonmod.dumps(obj, separators=(",", ":"), ensure_ascii=False)

    def loads(text: str | bytes) -> Any:
        return _jsonmod.loads(text)


def encode_line(obj: Any) -> bytes:
    """One protocol message: compact JSON plus newline."""
    return dumps(obj).encode() + b"\n"


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream frame: header + payload."""
    return HEADER.pack(stream, len(data)) + data


def format_time(ns: int) -> str:
    """RFC 3339 UTC with 9 fractional digits, as Docker's logs write it."""
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def now() -> str:
    """The current time in ``format_time``'s format."""
    return format_time(time.time_ns())


def ok(**fields: Any) -> dict[str, Any]:
    """A success reply."""
    return {"ok": True, **fields}


def fail(message: str) -> dict[str, Any]:
    """An error reply."""
    return {"ok": False, "error": message}


def exit_code(status: int) -> int:
    """A waitpid status as Docker reports it: the exit code, or 128 + signal."""
    import os

    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
