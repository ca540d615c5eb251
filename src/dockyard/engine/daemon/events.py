"""The daemon's event log: what `GET /events` streams, kept in memory with a bounded backlog."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

BACKLOG = 1024  # events kept for `since` queries (dockerd keeps 256 in 20.10; more is harmless)
Event = dict[str, Any]


class EventBus:
    """Publishes events to live subscribers and keeps recent ones for replay."""

    def __init__(self) -> None:
        self.backlog: deque[Event] = deque(maxlen=BACKLOG)
        self.subscribers: set[asyncio.Queue[Event]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers live on; emit() from other threads hands the event over to it."""
        self.loop, self._loop_thread = loop, threading.get_ident()

    def emit(self, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        ns = time.time_ns()
        event: Event = {"Type": type, "Action": action, "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                        "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
        if type in ("container", "image"):  # the legacy fields the 20.10 CLI still reads
            event = {"status": action, "id": actor_id, "from": (attributes or {}).get("image", ""), **event}
        if self.loop is not None and threading.get_ident() != self._loop_thread:
            self.loop.call_soon_threadsafe(self._publish, event)
        else:
            self._publish(event)
        return event

    def _publish(self, event: Event) -> None:
        self.backlog.append(event)
        for q in list(self.subscribers):
            q.put_nowait(event)

    @property
    def listeners(self) -> int:
        return len(self.subscribers)

    async def stream(self, since_ns: int, until_ns: int, match: Callable[[Event], bool]) -> AsyncIterator[Event]:
        """Backlog events at or after since_ns, then live ones until until_ns (0 = forever)."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        self.subscribers.add(q)
        try:
            if since_ns:
                for ev in list(self.backlog):
                    if ev["timeNano"] >= since_ns and (not until_ns or ev["timeNano"] <= until_ns) and match(ev):
                        yield ev
            if until_ns and time.time_ns() > until_ns:
                return
            while True:
                timeout = None
                if until_ns:
                    timeout = max(0.0, (until_ns - time.time_ns()) / 1e9)
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except asyncio.TimeoutError:
                    return
                if until_ns and ev["timeNano"] > until_ns:
                    return
                if match(ev):
                    yield ev
        finally:
            self.subscribers.discard(q)
