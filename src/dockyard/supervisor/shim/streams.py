"""The shim's event loop (one epoll) and its client connections.

select.epoll directly rather than selectors: selectors pulls in more modules
for a single registration table the shim keeps itself.
"""

from __future__ import annotations

import _socket
import os
import select
import sys
import time

TYPE_CHECKING = False  # collections.abc/typing would load modules the shim never uses
if TYPE_CHECKING:
    from collections.abc import Callable

IN = select.EPOLLIN
OUT = select.EPOLLOUT
HIGH_WATER = 1024 * 1024  # per attacher; above it the process's output is not read (backpressure)
LOW_WATER = 256 * 1024
CHUNK = 65536


class Loop:
    """fd -> callback(events) over one epoll, plus one-shot deadlines."""

    def __init__(self) -> None:
        self.ep = select.epoll()
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self.masks: dict[int, int] = {}
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def add(self, fd: int, mask: int, callback: Callable[[int], None]) -> None:
        self.ep.register(fd, mask)
        self.callbacks[fd] = callback
        self.masks[fd] = mask

    def modify(self, fd: int, mask: int) -> None:
        if fd in self.masks and self.masks[fd] != mask:
            self.ep.modify(fd, mask)
            self.masks[fd] = mask

    def remove(self, fd: int) -> None:
        if self.callbacks.pop(fd, None) is not None:
            del self.masks[fd]
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, callback))

    def run_once(self, max_wait: float = -1) -> None:
        """Wait for events (or the next deadline) and dispatch them."""
        timeout = max_wait
        if self.timers:
            soonest = max(0.0, min(t for t, _ in self.timers) - time.monotonic())
            timeout = soonest if timeout < 0 else min(timeout, soonest)
        for fd, events in self.ep.poll(timeout):
            callback = self.callbacks.get(fd)
            if callback is not None:
                _guard(callback, events)
        now = time.monotonic()
        due = [cb for t, cb in self.timers if t <= now]
        self.timers = [(t, cb) for t, cb in self.timers if t > now]
        for cb in due:
            _guard(cb)


def _guard(callback: Callable[..., None], *args: int) -> None:
    """One failing handler must not take the shim (and its container's record) down."""
    try:
        callback(*args)
    except Exception as e:  # noqa: BLE001 - logged, loop continues
        print(f"shim: handler error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


class Conn:
    """One client connection: a request line, then replies and/or a byte stream."""

    def __init__(self, loop: Loop, sock: _socket.socket) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.reading = True
        self.closing = False
        self.closed = False
        self.on_line: Callable[[Conn, bytes], None] | None = None
        self.on_data: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None
        self.on_drain: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None
        sock.setblocking(False)
        loop.add(self.fd, IN, self._event)

    def send(self, data: bytes) -> None:
        """Queue bytes; written as the socket accepts them."""
        if self.closed or self.closing or not data:
            return
        if not self.outbuf:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            data = data[sent:]
        self.outbuf += data
        self._update()

    def finish(self) -> None:
        """Close once everything queued is written."""
        self.closing = True
        if not self.outbuf:
            self.close()
        else:
            self._update()

    def set_reading(self, on: bool) -> None:
        if self.reading != on:
            self.reading = on
            self._update()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove(self.fd)
        self.sock.close()
        self.outbuf.clear()
        if self.on_close is not None:
            self.on_close()

    def _update(self) -> None:
        if self.closed:
            return
        mask = (IN if self.reading and not self.closing else 0) | (OUT if self.outbuf else 0)
        self.loop.modify(self.fd, mask)

    def _event(self, events: int) -> None:
        if events & OUT:
            self._flush()
        if self.closed:
            return
        if events & (IN | select.EPOLLHUP | select.EPOLLERR) and self.reading and not self.closing:
            self._read()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        del self.outbuf[:sent]
        if not self.outbuf:
            if self.closing:
                self.close()
                return
            self._update()
        if len(self.outbuf) < LOW_WATER and self.on_drain is not None:
            self.on_drain()

    def _read(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self.on_line is not None:  # gone before sending a request
                self.close()
                return
            self.set_reading(False)
            if self.on_eof is not None:
                self.on_eof()
            return
        if self.on_line is not None:
            self.inbuf += data
            nl = self.inbuf.find(b"\n")
            if nl >= 0:
                line, rest = bytes(self.inbuf[:nl]), bytes(self.inbuf[nl + 1:])
                self.inbuf.clear()
                handler, self.on_line = self.on_line, None
                handler(self, line)
                if rest and self.on_data is not None:
                    self.on_data(rest)
            elif len(self.inbuf) > 1024 * 1024:
                self.close()
        elif self.on_data is not None:
            self.on_data(data)


def nonblocking(fd: int) -> int:
    os.set_blocking(fd, False)
    return fd
