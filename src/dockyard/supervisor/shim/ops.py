"""The shim's request handlers, one per protocol operation (see protocol.py)."""

from __future__ import annotations

import os

from . import protocol
from .process import Proc
from .runtime import ConsoleSocket, run_piped
from .streams import Conn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .main import Shim


class OpError(Exception):
    """A request the shim refuses; the message goes back to the client."""


class Ops:
    """Dispatch of one request line per connection."""

    def __init__(self, shim: Shim) -> None:
        self.shim = shim

    def handle(self, conn: Conn, line: bytes) -> None:
        try:
            req = protocol.loads(line)
            if not isinstance(req, dict):
                raise OpError("request must be a JSON object")
            method = getattr(self, "op_" + str(req.get("op")), None)
            if method is None:
                raise OpError(f"unknown op {req.get('op')!r}")
            method(conn, req)
        except (OpError, ValueError, OSError, RuntimeError, KeyError, TypeError) as e:
            conn.send(protocol.encode_line(protocol.fail(str(e) or type(e).__name__)))
            conn.finish()

    @staticmethod
    def reply(conn: Conn, **fields: Any) -> None:
        conn.send(protocol.encode_line(protocol.ok(**fields)))

    def op_start(self, conn: Conn, req: dict[str, Any]) -> None:
        shim = self.shim
        if shim.init.status is not None:
            raise OpError("container has already exited")
        if shim.started:
            raise OpError("container is already started")
        code, err = shim.runtime.run(["start"])
        if code != 0:
            raise OpError(err)
        shim.started = True
        self.reply(conn)
        conn.finish()

    def op_attach(self, conn: Conn, req: dict[str, Any]) -> None:
        init = self.shim.init
        self.reply(conn)
        init.attach(conn, bool(req.get("stdout")), bool(req.get("stderr")), bool(req.get("stdin")))

    def op_wait(self, conn: Conn, req: dict[str, Any]) -> None:
        shim = self.shim
        if shim.finished:
            self.reply(conn, exit_code=shim.init.status, exited_at=shim.init.exited_at,
                       oom_killed=getattr(shim, "oom_killed", False))
            conn.finish()
        else:
            shim.exit_waiters.append(conn)
            conn.on_close = _remover(shim.exit_waiters, conn, shim.conns)

    def op_state(self, conn: Conn, req: dict[str, Any]) -> None:
        init = self.shim.init
        if init.status is not None:
            status = "stopped"
        else:
            status = "running" if self.shim.started else "created"
        self.reply(conn, status=status, pid=init.pid, exit_code=init.status, exited_at=init.exited_at)
        conn.finish()

    def op_resize(self, conn: Conn, req: dict[str, Any]) -> None:
        from .main import set_winsize

        proc = self._proc(req.get("exec_id"))
        if proc.master < 0:
            raise OpError("the process has no terminal")
        set_winsize(proc.master, int(req["height"]), int(req["width"]))
        self.reply(conn)
        conn.finish()

    def op_exec_wait(self, conn: Conn, req: dict[str, Any]) -> None:
        proc = self._proc(req.get("exec_id"))
        if proc.done:
            self.reply(conn, exit_code=proc.status)
            conn.finish()
            return

        def answer(p: Proc) -> None:
            self.reply(conn, exit_code=p.status)
            conn.finish()

        proc.on_done.append(answer)

    def op_shutdown(self, conn: Conn, req: dict[str, Any]) -> None:
        if not self.shim.finished:
            raise OpError("container is still running")
        self.reply(conn)
        conn.finish()
        self.shim.exit_deadline = True

    def op_exec(self, conn: Conn, req: dict[str, Any]) -> None:
        shim = self.shim
        exec_id = str(req.get("exec_id") or "")
        if not exec_id or not all(c.isalnum() or c in "-_." for c in exec_id) or exec_id.startswith("."):
            raise OpError(f"invalid exec id {exec_id!r}")
        if exec_id in shim.execs:
            raise OpError(f"exec {exec_id} already exists")
        if shim.init.status is not None or shim.finished:
            raise OpError("container is not running")
        process = req.get("process")
        if not isinstance(process, dict):
            raise OpError("process must be an OCI process object")
        proc = Proc(shim.loop, exec_id, bool(process.get("terminal")), True)
        pid = ExecLauncher(shim, exec_id, process, bool(req.get("stdin"))).launch(proc)
        shim.execs[exec_id] = proc
        proc.on_done.append(lambda p: _remove_exec_files(shim.bundle, exec_id))
        self.reply(conn, pid=pid)
        if req.get("detach"):
            conn.finish()
        else:
            proc.attach(conn, True, True, bool(req.get("stdin")))
        shim.register(proc, pid)

    def _proc(self, exec_id: object) -> Proc:
        if not exec_id:
            return self.shim.init
        proc = self.shim.execs.get(str(exec_id))
        if proc is None:
            raise OpError(f"no such exec: {exec_id}")
        return proc


class ExecLauncher:
    """``runtime exec --detach`` with the exec's stdio wired to the shim."""

    def __init__(self, shim: Shim, exec_id: str, process: dict[str, Any], stdin: bool) -> None:
        self.shim = shim
        self.stdin = stdin
        self.spec_path = os.path.join(shim.bundle, f"exec-{exec_id}.json")
        self.pid_path = os.path.join(shim.bundle, f"exec-{exec_id}.pid")
        self.tty = bool(process.get("terminal"))
        with open(self.spec_path, "w") as f:
            f.write(protocol.dumps(process))

    def launch(self, proc: Proc) -> int:
        args = ["exec", "--process", self.spec_path, "--detach", "--pid-file", self.pid_path]
        try:
            if self.tty:
                self._with_console(args, proc)
            else:
                self._with_pipes(args, proc)
            from .main import read_pid

            return read_pid(self.pid_path)
        except BaseException:
            _remove_exec_files(self.shim.bundle, proc.exec_id or "")
            raise

    def _with_console(self, args: list[str], proc: Proc) -> None:
        console = ConsoleSocket(self.shim.console_path(f"exec-{proc.exec_id}.sock"))
        try:
            code, err = self.shim.runtime.run([*args, "--console-socket", console.path])
            if code != 0:
                raise OpError(err)
            proc.set_master(console.receive(), self.stdin)
        finally:
            console.close()

    def _with_pipes(self, args: list[str], proc: Proc) -> None:
        try:
            run_piped(self.shim.runtime, args, proc, self.stdin)
        except RuntimeError as e:
            raise OpError(str(e)) from None

def _remove_exec_files(bundle: str, exec_id: str) -> None:
    for suffix in (".json", ".pid"):
        try:
            os.unlink(os.path.join(bundle, f"exec-{exec_id}{suffix}"))
        except OSError:
            pass


def _remover(items: list[Conn], conn: Conn, conns: set[Conn]) -> Any:
    def remove() -> None:
        if conn in items:
            items.remove(conn)
        conns.discard(conn)

    return remove
