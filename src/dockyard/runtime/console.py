"""Terminals: the container's pty, and delivery of its master over --console-socket.

The init creates the pty inside the container (after pivot_root, so it comes
from the container's devpts), makes the slave its controlling terminal and
stdio, binds it over /dev/console, and hands the master to the runtime, which
forwards it to the caller's console socket (SCM_RIGHTS), as runc does.
"""

from __future__ import annotations

import os


def open_pty(size: dict | None = None) -> tuple[int, int, str]:
    """(master, slave, slave path) of a new pty from the current /dev/ptmx."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    if size and size.get("height") and size.get("width"):
        set_size(master, int(size["height"]), int(size["width"]))
    return master, slave, name


def set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_size(src: int, dst: int) -> None:
    """Give terminal ``dst`` the window size of terminal ``src``."""
    import fcntl
    import struct
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
        if rows and cols:
            set_size(dst, rows, cols)
    except OSError:
        pass


def become_controlling(slave: int) -> None:
    """dup the slave to stdio and make it the controlling terminal (after setsid)."""
    import fcntl
    import termios

    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def send_to_socket(path: str, master: int) -> None:
    """Connect to the caller's console socket and pass ``master`` over it."""
    import array
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        # runc sends the pty's name as the message body.
        sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])


def relay(master: int) -> None:
    """Foreground mode: copy our stdin to the pty and the pty to our stdout until it closes."""
    import select
    import termios
    import tty

    stdin_is_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_is_tty else None
    if stdin_is_tty:
        import _signal

        tty.setraw(0)
        copy_size(0, master)
        _signal.signal(_signal.SIGWINCH, lambda signum, frame: copy_size(0, master))
    inputs = [master, 0]
    try:
        while True:
            ready, _, _ = select.select(inputs, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs.remove(0)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
