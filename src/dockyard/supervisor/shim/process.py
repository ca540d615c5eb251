"""One supervised process (the container's init or an exec) and its stdio.

The shim owns the process's output ends (two pipes, or a pty master), copies
output to the log (init only) and to every attached connection, feeds stdin
from attached clients, and records the exit status once reaped. The process
is "done" when it exited and its output reached EOF (or a short grace period
passed: a leftover descendant may hold the pipe open).
"""

from __future__ import annotations

import errno
import os
import time

from .jsonlog import JsonLogWriter
from .protocol import STDERR, STDOUT, format_time, frame
from .streams import HIGH_WATER, IN, OUT, Conn, Loop, nonblocking

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DRAIN_GRACE = 2.0
STDIN_LIMIT = 1024 * 1024


class Attacher:
    """A connection receiving a process's output (and maybe feeding its stdin)."""

    def __init__(self, conn: Conn, stdout: bool, stderr: bool, stdin: bool) -> None:
        self.conn = conn
        self.streams = {STDOUT: stdout, STDERR: stderr}
        self.stdin = stdin


class Proc:
    """Output fan-out, stdin, exit status and completion of one process."""

    def __init__(self, loop: Loop, exec_id: str | None, tty: bool, stdin_once: bool) -> None:
        self.loop = loop
        self.exec_id = exec_id
        self.tty = tty
        self.stdin_once = stdin_once
        self.pid = 0
        self.master = -1
        self.outs: dict[int, int] = {}  # fd -> stream
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.log: JsonLogWriter | None = None
        self.attachers: list[Attacher] = []
        self.status: int | None = None
        self.exited_at: str | None = None
        self.done = False
        self.paused = False
        self.on_done: list[Callable[[Proc], None]] = []

    # -- wiring ---------------------------------------------------------------
    def set_pipes(self, stdin_w: int, stdout_r: int, stderr_r: int) -> None:
        """Our ends of the process's pipes (stdin_w -1: no stdin)."""
        self.outs = {nonblocking(stdout_r): STDOUT, nonblocking(stderr_r): STDERR}
        self.stdin_fd = nonblocking(stdin_w) if stdin_w >= 0 else -1
        for fd in self.outs:
            self.loop.add(fd, IN, self._reader(fd))

    def set_master(self, master: int, stdin: bool) -> None:
        """The pty master; stdin writes go through a dup so epoll can watch both ways."""
        self.master = nonblocking(master)
        self.outs = {master: STDOUT}
        self.loop.add(master, IN, self._reader(master))
        if stdin:
            self.stdin_fd = os.dup(master)

    def attach(self, conn: Conn, stdout: bool, stderr: bool, stdin: bool) -> None:
        """Stream output to ``conn``; feed its bytes to stdin when asked."""
        att = Attacher(conn, stdout, stderr, stdin and self.stdin_fd >= 0)
        self.attachers.append(att)
        previous = conn.on_close

        def closed() -> None:
            self._detach(att)
            if previous is not None:
                previous()

        conn.on_close = closed
        conn.on_drain = self._resume
        conn.on_data = self.write_stdin if att.stdin else _discard
        conn.on_eof = self._client_eof if att.stdin else None
        if self.done:
            conn.finish()

    # -- output ---------------------------------------------------------------
    def _reader(self, fd: int) -> Callable[[int], None]:
        return lambda events: self._read(fd)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the pty's last slave closed
                raise
            data = b""
        if not data:
            self._close_out(fd)
            return
        stream = self.outs[fd]
        if self.log is not None:
            self.log.write(stream, data, time.time_ns())
        for att in list(self.attachers):
            if att.streams[stream]:
                att.conn.send(data if self.tty else frame(stream, data))
        if any(len(a.conn.outbuf) > HIGH_WATER for a in self.attachers):
            self._pause()

    def _close_out(self, fd: int) -> None:
        self.loop.remove(fd)
        del self.outs[fd]
        if fd != self.master:
            os.close(fd)
        self._check_done()

    def _pause(self) -> None:
        self.paused = True
        for fd in self.outs:
            self.loop.modify(fd, 0)

    def _resume(self) -> None:
        if self.paused and all(len(a.conn.outbuf) <= HIGH_WATER // 2 for a in self.attachers):
            self.paused = False
            for fd in self.outs:
                self.loop.modify(fd, IN)

    def _detach(self, att: Attacher) -> None:
        if att in self.attachers:
            self.attachers.remove(att)
        self._resume()

    # -- stdin ----------------------------------------------------------------
    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0 or self.stdin_closing:
            return
        if not self.stdin_buf:
            try:
                data = data[os.write(self.stdin_fd, data):]
            except BlockingIOError:
                pass
            except OSError:
                self.close_stdin()
                return
        if data:
            self.stdin_buf += data
            if self.stdin_fd not in self.loop.callbacks:
                self.loop.add(self.stdin_fd, OUT, lambda events: self._flush_stdin())
            if len(self.stdin_buf) > STDIN_LIMIT:
                for att in self.attachers:
                    if att.stdin:
                        att.conn.set_reading(False)

    def _flush_stdin(self) -> None:
        try:
            del self.stdin_buf[:os.write(self.stdin_fd, self.stdin_buf)]
        except BlockingIOError:
            return
        except OSError:
            self.stdin_buf.clear()
        if not self.stdin_buf:
            self.loop.remove(self.stdin_fd)
            for att in self.attachers:
                if att.stdin and not att.conn.closing:
                    att.conn.set_reading(True)
            if self.stdin_closing:
                self._really_close_stdin()

    def _client_eof(self) -> None:
        # As Docker: a tty's input is never closed by a client leaving (no EOF on a pty).
        if self.stdin_once and not self.tty:
            self.close_stdin()

    def close_stdin(self) -> None:
        """EOF for the process once what clients sent is written."""
        if self.stdin_fd < 0:
            return
        self.stdin_closing = True
        if not self.stdin_buf:
            self._really_close_stdin()

    def _really_close_stdin(self) -> None:
        self.loop.remove(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = -1
        self.stdin_buf.clear()

    # -- exit -----------------------------------------------------------------
    def exited(self, status_code: int) -> None:
        """The process was reaped; finish once output is drained."""
        self.status = status_code
        self.exited_at = format_time(time.time_ns())
        if self.outs:
            self.loop.call_later(DRAIN_GRACE, self._force_done)
        self._check_done()

    def _force_done(self) -> None:
        for fd in list(self.outs):
            self._read_rest(fd)
            if fd in self.outs:
                self._close_out(fd)

    def _read_rest(self, fd: int) -> None:
        for _ in range(64):
            if fd not in self.outs:
                return
            before = len(self.outs)
            self._read(fd)
            if len(self.outs) == before and not _readable(fd):
                return

    def _check_done(self) -> None:
        if self.done or self.status is None or self.outs:
            return
        self.done = True
        if self.log is not None:
            self.log.close(time.time_ns())
        if self.stdin_fd >= 0:
            self._really_close_stdin()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        for callback in self.on_done:
            callback(self)
        self.close_attachers()

    def close_attachers(self) -> None:
        for att in list(self.attachers):
            att.conn.finish()


def _discard(data: bytes) -> None:
    """Bytes from a client that did not ask for stdin."""


def _readable(fd: int) -> bool:
    import select

    try:
        return bool(select.select([fd], [], [], 0)[0])
    except OSError:
        return False
