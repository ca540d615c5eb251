"""The shim's adapter to the OCI runtime command line (runc or dockyard-runtime).

Calls are synchronous: the runtime's create/start/exec/delete return quickly
(a detached container keeps running after the runtime exits), so the
single-threaded shim simply waits for its child. Children are started with
posix_spawn, cheaper than forking the interpreter, with the signals the shim
ignores (SIGTERM, SIGPIPE, SIGXFSZ) set back to default: the container's
process inherits dispositions through the runtime.
"""

from __future__ import annotations

import _signal
import _socket
import array
import os

from .protocol import exit_code, loads

# The shim uses _socket/_signal directly: socket.py and signal.py import enum (~1 MB of RSS).

TYPE_CHECKING = False  # typing stays out of the shim at run time
if TYPE_CHECKING:
    from .process import Proc

RUNTIME_TIMEOUT = 120.0
RESET_SIGNALS = (_signal.SIGTERM, _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGHUP, _signal.SIGINT, _signal.SIGCHLD)


def spawn(argv: list[str], stdio: tuple[int, int, int]) -> int:
    """Start ``argv`` with ``stdio`` as fds 0, 1, 2; return its pid."""
    actions = [(os.POSIX_SPAWN_DUP2, fd, n) for n, fd in enumerate(stdio)]
    run = os.posix_spawn if "/" in argv[0] else os.posix_spawnp
    return run(argv[0], argv, os.environ, file_actions=actions, setsigdef=RESET_SIGNALS, setsigmask=())


def wait_child(pid: int, timeout: float) -> int | None:
    """waitpid(pid) for at most ``timeout`` seconds; on expiry kill it, reap it, return None.

    A hung runtime must not freeze the shim forever (its container's output and
    exit record depend on the shim's loop). A pidfd makes the wait pollable.
    """
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # pre-5.3 kernel: wait without a deadline
        return os.waitpid(pid, 0)[1]
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]


def read_available(fd: int, limit: int = 65536) -> bytes:
    """Whatever is readable on ``fd`` right now (it may be non-blocking or a file)."""
    try:
        return os.read(fd, limit)
    except OSError:
        return b""


class ConsoleSocket:
    """A listening unix socket on which the runtime delivers the pty master."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.lexists(path):
            os.unlink(path)
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.setblocking(False)

    def receive(self) -> int:
        """The master fd the runtime sent (it connected and exited already)."""
        try:
            fd, _ = self.sock._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            raise RuntimeError("the runtime did not send the console") from None
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        fds = array.array("i")
        try:
            conn.settimeout(5)
            _, anc, _, _ = conn.recvmsg(1024, _socket.CMSG_SPACE(fds.itemsize * 4))
            for level, kind, data in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        finally:
            conn.close()
        if not fds:
            raise RuntimeError("the runtime's console message carried no fd")
        for extra in fds[1:]:
            os.close(extra)
        os.set_inheritable(fds[0], False)
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class RuntimeCli:
    """``<runtime> <global args> <subcommand> ... <id>`` for one container."""

    def __init__(self, runtime: str, args: list[str], cid: str) -> None:
        self.prefix = [runtime, *args]
        self.cid = cid
        self.log_path = _flag_value(args, "--log")

    def run(self, sub: list[str], stdio: tuple[int, int, int] | None = None, err_fd: int = -1) -> tuple[int, str]:
        """Run a subcommand to completion: (exit code, error message or "").

        Without ``stdio`` the runtime's output goes to a memfd read back on
        failure; with it, ``err_fd`` is where its stderr can be read back.
        """
        offset = _size(self.log_path)
        own = -1
        if stdio is None:
            own = os.memfd_create("runtime-output", os.MFD_CLOEXEC)
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            stdio = (null, own, own)
        try:
            pid = spawn([*self.prefix, *sub, self.cid], stdio)
        except OSError as e:
            if own >= 0:
                os.close(own)
            return 127, f"cannot run the OCI runtime {self.prefix[0]}: {e.strerror or e}"
        finally:
            if own >= 0:
                os.close(stdio[0])
        status = wait_child(pid, RUNTIME_TIMEOUT)
        code = exit_code(status) if status is not None else -1
        message = ""
        if code != 0:
            message = self._log_error(offset)
            if not message:
                if own >= 0:
                    os.lseek(own, 0, os.SEEK_SET)
                    err_fd = own
                text = read_available(err_fd).decode("utf-8", "replace").strip() if err_fd >= 0 else ""
                message = text or f"{sub[0]} failed: runtime exited with status {code}"
            if status is None:
                message = f"{sub[0]} failed: the runtime did not finish within {RUNTIME_TIMEOUT:.0f}s"
        if own >= 0:
            os.close(own)
        return code, message

    def _log_error(self, offset: int) -> str:
        """The last ``"level":"error"`` message the runtime logged during this call."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                lines = f.read().splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            try:
                entry = loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") == "error" and entry.get("msg"):
                return str(entry["msg"])
        return ""


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _size(path: str | None) -> int:
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def run_piped(runtime: RuntimeCli, args: list[str], proc: Proc, open_stdin: bool) -> None:
    """Run ``args`` (create or exec) with fresh pipes as the process's stdio; hand our ends to ``proc``.

    Raises RuntimeError with the runtime's message if it fails.
    """
    stdin_r, stdin_w = os.pipe() if open_stdin else (os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        os.set_blocking(err_r, False)
        code, err = runtime.run(args, (stdin_r, out_w, err_w), err_fd=err_r)
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    if code != 0:
        for fd in (stdin_w, out_r, err_r):
            if fd >= 0:
                os.close(fd)
        raise RuntimeError(err)
    proc.set_pipes(stdin_w, out_r, err_r)
