"""The per-container shim process: ``python -I -S -c ... <bundle>`` (see client.shim_argv).

It reads ``<bundle>/shim.json``, detaches from the daemon (new session, its
parent exits at once), becomes a child subreaper, creates the container
through the OCI runtime, reports ``{"ok": true, "pid": N}`` (or the runtime's
error) as one line on its original stdout, then serves the socket protocol of
protocol.py until the container's init has exited and everything is recorded.
Single-threaded: one epoll, SIGCHLD through the signal wakeup fd.
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

from . import protocol
from .jsonlog import JsonLogWriter
from .ops import Ops
from .process import Proc
from .runtime import ConsoleSocket, RuntimeCli, run_piped
from .streams import IN, Conn, Loop

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_FLUSH_TIMEOUT = 5.0


class Shim:
    """State of one container's shim: its init, execs, connections and exit."""

    def __init__(self, bundle: str, config: dict[str, Any]) -> None:
        self.bundle = bundle
        self.config = config
        self.cid = str(config["id"])
        self.runtime = RuntimeCli(str(config["runtime"]), [str(a) for a in config.get("runtime_args") or []], self.cid)
        self.loop = Loop()
        self.init = Proc(self.loop, None, bool(config.get("tty")), bool(config.get("stdin_once")))
        self.execs: dict[str, Proc] = {}
        self.started = False
        self.finished = False
        self.oom_killed = False
        self.exit_deadline = False
        self.exit_waiters: list[Conn] = []
        self.reaped: dict[int, int] = {}
        self.pids: dict[int, Proc] = {}
        self.listener: _socket.socket | None = None
        self.conns: set[Conn] = set()
        self.ops = Ops(self)

    # -- setup ----------------------------------------------------------------
    def listen(self) -> None:
        path = str(self.config["socket"])
        if os.path.lexists(path):
            if _answers(path):
                raise RuntimeError(f"another shim is serving {path}")
            os.unlink(path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        self.listener = sock
        self.loop.add(sock.fileno(), IN, lambda events: self._accept())

    def watch_children(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, _noop)
        self.loop.add(r, IN, lambda events: self._drain_wakeup(r))

    def console_path(self, name: str) -> str:
        path = os.path.join(self.bundle, name)
        if len(path) < 100:
            return path
        return f"/tmp/dockyard-shim-{os.getpid()}-{name}"

    def create(self) -> int:
        """``runtime create``; return the init pid (raises RuntimeError with the runtime's message)."""
        cfg = self.config
        args = ["create", "--bundle", self.bundle, "--pid-file", os.path.join(self.bundle, "init.pid")]
        proc = self.init
        if cfg.get("tty"):
            console = ConsoleSocket(self.console_path("console.sock"))
            try:
                code, err = self.runtime.run([*args, "--console-socket", console.path])
                if code != 0:
                    raise RuntimeError(err)
                proc.set_master(console.receive(), bool(cfg.get("open_stdin")))
            finally:
                console.close()
            size = cfg.get("console_size")
            if size and any(size):  # Docker's default [0, 0] means "not given"
                set_winsize(proc.master, int(size[0]), int(size[1]))
        else:
            self._create_piped(args, proc)
        log = cfg.get("log") or {}
        if log.get("driver", "json-file") == "json-file" and log.get("path"):
            proc.log = JsonLogWriter(str(log["path"]), int(log.get("max_size") or 0), int(log.get("max_file") or 1))
        proc.on_done.append(lambda p: self._init_done())
        self.register(proc, read_pid(os.path.join(self.bundle, "init.pid")))
        return proc.pid

    def _create_piped(self, args: list[str], proc: Proc) -> None:
        run_piped(self.runtime, args, proc, bool(self.config.get("open_stdin")))

    def register(self, proc: Proc, pid: int) -> None:
        """Track ``pid`` as ``proc``'s process (it may have been reaped already)."""
        proc.pid = pid
        if pid in self.reaped:
            proc.exited(protocol.exit_code(self.reaped.pop(pid)))
        else:
            self.pids[pid] = proc

    def cleanup_failed_create(self, error: str) -> None:
        """Remove what a failed create left, but never a same-named container someone else runs."""
        if self.listener is not None and "exists" not in error:
            self.runtime.run(["delete", "--force"])
        self.reap()
        self.close_listener()

    # -- loop -----------------------------------------------------------------
    def serve(self) -> None:
        while True:
            self.loop.run_once()
            if self.finished and self._may_exit():
                break
        self.close_listener()

    def _may_exit(self) -> bool:
        if self.exit_deadline:
            return True
        busy = any(c.outbuf for c in self.conns) or any(not p.done for p in self.execs.values())
        return not busy

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            return
        conn = Conn(self.loop, _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd))
        self.conns.add(conn)
        conn.on_line = self.ops.handle
        conn.on_close = lambda: self.conns.discard(conn)

    def _drain_wakeup(self, fd: int) -> None:
        try:
            while os.read(fd, 256):
                pass
        except BlockingIOError:
            pass
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.pids.pop(pid, None)
            if proc is not None:
                proc.exited(protocol.exit_code(status))
            else:
                self.reaped[pid] = status
                if len(self.reaped) > 256:
                    self.reaped.pop(next(iter(self.reaped)))

    # -- exit -----------------------------------------------------------------
    def _init_done(self) -> None:
        """Record the exit, answer everyone, remove the runtime's state, then leave.

        Waiters are answered before `runtime delete`: the daemon knows the shim deletes the
        container and waits for the runtime's state to be gone before it creates it again.
        """
        proc = self.init
        self.oom_killed = oom_killed(self.bundle)
        try:
            write_exit_file(str(self.config["exit_file"]), {"exit_code": proc.status, "exited_at": proc.exited_at,
                                                            "oom_killed": self.oom_killed})
        except OSError as e:  # still answer the waiters: they carry the same record
            print(f"shim: cannot write the exit file: {e}", file=sys.stderr, flush=True)
        reply = protocol.encode_line(protocol.ok(exit_code=proc.status, exited_at=proc.exited_at,
                                                 oom_killed=self.oom_killed))
        for conn in self.exit_waiters:  # answered first: the daemon's cleanup runs beside the delete
            conn.send(reply)
            conn.finish()
        self.exit_waiters.clear()
        self.runtime.run(["delete", "--force"])
        self.finished = True
        self.loop.call_later(EXIT_FLUSH_TIMEOUT, self._give_up_waiting)

    def _give_up_waiting(self) -> None:
        self.exit_deadline = True

    def close_listener(self) -> None:
        if self.listener is not None:
            self.loop.remove(self.listener.fileno())
            self.listener.close()
            self.listener = None
            try:
                os.unlink(str(self.config["socket"]))
            except OSError:
                pass


def oom_killed(bundle: str) -> bool:
    """Whether the kernel's OOM killer struck in the container's memory cgroup (v1 or v2, cgroupfs paths).

    Read before `runtime delete` removes the cgroup: the "oom_kill" counter of memory.oom_control
    (v1) or memory.events (v2).
    """
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            path = str((protocol.loads(f.read()).get("linux") or {}).get("cgroupsPath") or "")
    except (OSError, ValueError):
        return False
    if not path.startswith("/"):
        return False
    for name in ("/sys/fs/cgroup/memory" + path + "/memory.oom_control", "/sys/fs/cgroup" + path + "/memory.events"):
        try:
            with open(name) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def _answers(path: str) -> bool:
    """Whether a live process listens on the unix socket ``path``."""
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def set_winsize(fd: int, height: int, width: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def read_pid(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def write_exit_file(path: str, record: dict[str, Any]) -> None:
    """tmp + fsync + rename: the daemon never sees a half-written record."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, protocol.encode_line(record))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _noop(signum: int, frame: object) -> None:
    """SIGCHLD needs a Python-level handler for the wakeup fd to be written."""


WARM_FLAG = "--wait-for-bundle"


def detach() -> None:
    """Leave the daemon: our parent returns at once, we continue in a new session."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    os.chdir("/")


def report(result: dict[str, Any]) -> None:
    """The one line spawn_shim waits for; then stdout no longer leads to the daemon."""
    line = protocol.encode_line(result)
    try:
        os.write(1, line)
    except OSError:
        pass
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def wait_for_bundle() -> str:
    """A warm shim: detached and imported already, it waits for its bundle path on stdin ("" at EOF)."""
    from dockyard.kernel.subreaper import set_child_subreaper  # noqa: F401  (imported while idle)

    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 4096)
        if not chunk:
            return ""
        line += chunk
    return line.decode().strip()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    warm = args[:1] == [WARM_FLAG]
    if warm:
        detach()
        args = [wait_for_bundle()]
        if not args[0]:
            return 0  # the daemon went away before needing us
        try:  # from now on this shim's messages belong with its bundle
            log = os.open(os.path.join(args[0], "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.dup2(log, 2)
            os.close(log)
        except OSError:
            pass
    bundle = os.path.abspath(args[0])
    try:
        with open(os.path.join(bundle, "shim.json"), "rb") as f:
            config = protocol.loads(f.read())
    except (OSError, ValueError) as e:
        report(protocol.fail(f"shim: cannot read {bundle}/shim.json: {e}"))
        return 1
    if not warm:
        detach()
    for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
        _signal.signal(sig, _signal.SIG_IGN)
    from dockyard.kernel.subreaper import set_child_subreaper

    set_child_subreaper()
    shim = Shim(bundle, config)
    shim.watch_children()
    try:
        shim.listen()
        pid = shim.create()
    except Exception as e:  # noqa: BLE001 - reported to the daemon
        message = str(e) or type(e).__name__
        shim.cleanup_failed_create(message)
        report(protocol.fail(message))
        return 1
    report(protocol.ok(pid=pid))
    shim.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
