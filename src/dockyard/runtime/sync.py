"""The message channel between the runtime and a container's init process.

Two pipes carry one JSON object per line; a socket pair is added only when a
file descriptor (the pty master) must cross. The init closes its end when its
setup is complete: EOF without an ``error`` message means success.

Messages from init: ``hooks`` (run prestart/createRuntime, then answer
``resume``), ``console`` (a pty master follows on the socket), ``ready``,
``pid`` (exec: the pid of the process that will exec), ``error`` (``msg``).
Messages to init: ``go`` (user namespace mapped; sent only then), ``cgroup``
(what to mount at /sys/fs/cgroup: sent before the dirs are made, so that the
init binds each as soon as it exists), ``cgdirs`` (every dir is made),
``joined`` (the init is in its cgroup, limits set; the runtime does all this
while the init builds its rootfs, since a process's first cgroup move waits
for an RCU grace period), ``resume``.
"""

from __future__ import annotations

from ..oci import jsonio
import os


# Messages that may arrive while the init waits for another one.
NOTICES = ("cgroup", "cgdirs", "joined")


class Channel:
    """One end of the pair of pipes (and optional socket) shared with init."""

    def __init__(self, rfd: int, wfd: int, sock=None) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.sock = sock
        self._buf = b""
        self.noticed: dict[str, dict] = {}

    def send(self, kind: str, **fields) -> None:
        fields["t"] = kind
        os.write(self.wfd, jsonio.dumps(fields).encode() + b"\n")

    def recv(self) -> dict | None:
        """The next message, or None at end of file."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return jsonio.loads(line)

    def notice_within(self, timeout: float) -> None:
        """Keep the notice that arrives within ``timeout`` seconds, if one does."""
        if b"\n" not in self._buf:
            import select

            if not select.select([self.rfd], [], [], timeout)[0]:
                return
        msg = self.recv()
        if msg is None:
            raise EOFError("expected a notice from the other side, got end of file")
        if msg.get("t") not in NOTICES:
            raise EOFError(f"expected a notice from the other side, got {msg!r}")
        self.noticed[msg["t"]] = msg

    def expect(self, kind: str) -> dict:
        """The next message of ``kind``; notices (see ``NOTICES``) met on the way are kept."""
        if kind in self.noticed:
            return self.noticed.pop(kind)
        while True:
            msg = self.recv()
            if msg is None:
                raise EOFError(f"expected {kind!r} from the other side, got end of file")
            if msg.get("t") == kind:
                return msg
            if msg.get("t") not in NOTICES:
                raise EOFError(f"expected {kind!r} from the other side, got {msg!r}")
            self.noticed[msg["t"]] = msg

    def send_fd(self, fd: int) -> None:
        import array
        import socket

        self.sock.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])

    def recv_fd(self) -> int:
        return recv_fd(self.sock)

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.sock is not None:
            self.sock.close()


def recv_fd(sock) -> int:
    """Receive one file descriptor sent with SCM_RIGHTS on ``sock``."""
    import array
    import socket

    fds = array.array("i")
    _, ancdata, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: fds.itemsize])
            return fds[0]
    raise EOFError("no file descriptor received")


def pair(with_socket: bool = False) -> tuple[Channel, Channel]:
    """(parent end, child end). All descriptors are close-on-exec."""
    p2c_r, p2c_w = os.pipe()
    c2p_r, c2p_w = os.pipe()
    psock = csock = None
    if with_socket:
        import socket

        psock, csock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(c2p_r, p2c_w, psock), Channel(p2c_r, c2p_w, csock)
