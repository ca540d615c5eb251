"""Run test code in a forked child and collect what it writes to a pipe."""

from __future__ import annotations

import os
from collections.abc import Callable


def fork_and_collect(child: Callable[[int], None]) -> tuple[int, bytes]:
    """Fork; the child runs ``child(write_fd)`` (it must end with os._exit); return (wait status, bytes written)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            child(w)
        finally:
            os._exit(1)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks)
