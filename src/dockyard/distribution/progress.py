"""Docker's JSON progress stream for pulls: one message per event, per-layer ids, throttled bars.

Messages are ``{"status": ...}`` with an ``id`` (the tag, digest or short layer digest) and, for
"Downloading"/"Extracting", ``progressDetail`` {current, total} and a rendered ``progress`` bar.
The sink must never fail a pull: once the client has gone, messages are dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
BAR_WIDTH = 50
THROTTLE = 0.1  # seconds between two "Downloading" messages of one layer


def human_size(n: float) -> str:
    """Sizes as docker prints them: decimal units, three significant digits ("1.23MB", "512B")."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def bar(current: int, total: int) -> str:
    """"[=====>      ]  1.2MB/3.4MB" (just the sizes when the total is unknown)."""
    sizes = f"{human_size(current)}/{human_size(total)}" if total > 0 else human_size(current)
    if total <= 0:
        return sizes
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = ">" if filled < BAR_WIDTH else "="
    return "[" + "=" * max(filled - 1, 0) + arrow + " " * (BAR_WIDTH - filled) + "] " + sizes.rjust(17)


def short(digest: str) -> str:
    """A layer's id in progress messages: the first 12 hex digits."""
    return digest.split(":", 1)[-1][:12]


class Progress:
    """Serialises messages from concurrent downloads onto one ``send``."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = asyncio.Lock()
        self._last: dict[str, float] = {}
        self.closed = False
        self.messages: list[dict[str, Any]] = []

    async def emit(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self.closed:
            return
        async with self._lock:
            try:
                await self._send(message)
            except (ConnectionError, RuntimeError, OSError):
                self.closed = True  # the client went away: the pull goes on

    async def status(self, status: str, id: str | None = None) -> None:
        await self.emit({"status": status, **({"id": id} if id else {})})

    async def bar(self, status: str, id: str, current: int, total: int, *, force: bool = False) -> None:
        """A throttled "Downloading"/"Extracting" message with progressDetail."""
        now = time.monotonic()
        if not force and now - self._last.get(id, 0.0) < THROTTLE:
            return
        self._last[id] = now
        await self.emit({"status": status, "progressDetail": {"current": current, "total": total},
                         "progress": bar(current, total), "id": id})
