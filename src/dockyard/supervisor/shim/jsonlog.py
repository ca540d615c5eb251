"""Docker's json-file log driver, written by the shim; dockyardd reads it.

Format: one JSON object per line, one line per line of output::

    {"log":"text\\n","stream":"stdout","time":"2026-11-27T21:50:15.123456789Z"}

``log`` keeps the line's trailing newline. Output that has no newline yet is
held until a newline arrives, the held bytes reach 16 KiB, or the stream ends;
then it is written as one entry without ``\\n``. Invalid UTF-8 becomes U+FFFD.
``stream`` is ``stdout`` or ``stderr`` (a tty's output is ``stdout``); ``time``
is RFC 3339 UTC with 9 fractional digits (when the bytes were read).

Rotation (``max_size`` > 0): when an entry would push the file past
``max_size`` bytes, ``path`` becomes ``path.1`` (``path.1`` -> ``path.2`` ...,
at most ``max_file - 1`` rotated files, the oldest dropped) and a new file
starts. With ``max_file`` 1 the file is truncated in place instead.
"""

from __future__ import annotations

import os

from .protocol import dumps, format_time

PARTIAL_LIMIT = 16 * 1024
STREAMS = {1: "stdout", 2: "stderr"}


class JsonLogWriter:
    """Line-splitting, rotating writer of one container's json-file log."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path = path
        self.max_size = max(0, int(max_size))
        self.max_file = max(1, int(max_file))
        self._pending: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: int, data: bytes, ns: int) -> None:
        """Add output of ``stream`` (1 or 2) read at time ``ns``; write complete lines."""
        buf = self._pending[stream]
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._entry(stream, bytes(buf[start:nl + 1]), ns)
            start = nl + 1
        del buf[:start]
        while len(buf) >= PARTIAL_LIMIT:
            self._entry(stream, bytes(buf[:PARTIAL_LIMIT]), ns)
            del buf[:PARTIAL_LIMIT]

    def flush(self, ns: int) -> None:
        """Write held partial lines (the stream ended)."""
        for stream, buf in self._pending.items():
            if buf:
                self._entry(stream, bytes(buf), ns)
                buf.clear()

    def close(self, ns: int) -> None:
        """Flush and close the file."""
        if self._fd < 0:
            return
        self.flush(ns)
        os.close(self._fd)
        self._fd = -1

    def _entry(self, stream: int, text: bytes, ns: int) -> None:
        line = dumps({"log": text.decode("utf-8", "replace"), "stream": STREAMS[stream],
                      "time": format_time(ns)}).encode() + b"\n"
        if self.max_size and self._size and self._size + len(line) > self.max_size:
            self._rotate()
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        self._size += len(line)

    def _rotate(self) -> None:
        if self.max_file < 2:
            os.ftruncate(self._fd, 0)
            self._size = 0
            return
        os.close(self._fd)
        for n in range(self.max_file - 1, 0, -1):
            older = f"{self.path}.{n - 1}" if n > 1 else self.path
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{n}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0
