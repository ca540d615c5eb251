"""The daemon's side of the shim: launching one (spawn_shim) and talking to it (ShimClient).

asyncio throughout; every request opens its own connection to the shim's
socket (protocol.py), so a daemon restarted after a crash simply connects again.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

from dockyard.errors import DockyardError, NotFound

from . import protocol

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class ShimError(DockyardError):
    """The shim or the OCI runtime behind it refused or failed an operation."""


def error_for(message: str) -> DockyardError:
    """The error category of a runtime message (a missing executable is NotFound)."""
    if "executable file not found" in message:
        return NotFound(message)
    return ShimError(message)


def shim_argv(python: str = sys.executable) -> list[str]:
    """Command that starts a shim (append the bundle path): isolated, no site, no venv needed."""
    code = (f"import sys; sys.path.insert(0, {PACKAGE_PARENT!r}); "
            "from dockyard.supervisor.shim.main import main; sys.exit(main())")
    return [python, "-I", "-S", "-c", code]


@dataclass
class ShimInfo:
    """A running shim: where to reach it and its container's init pid."""

    bundle: str
    id: str
    socket: str
    pid: int


def _result(config: dict[str, Any], bundle: str, line: bytes) -> ShimInfo:
    if not line:
        raise ShimError(f"shim for {config['id']} exited without reporting (see {bundle}/shim.log)")
    result = protocol.loads(line)
    if not result.get("ok"):
        raise error_for(str(result.get("error") or "container create failed"))
    return ShimInfo(bundle=bundle, id=str(config["id"]), socket=str(config["socket"]), pid=int(result["pid"]))


def _read_config(bundle: str) -> dict[str, Any]:
    with open(os.path.join(bundle, "shim.json"), "rb") as f:
        return dict(protocol.loads(f.read()))


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """The shim lets go of its stdout right after its line: EOF lets asyncio close the transport."""
    assert proc.stdout is not None
    try:
        await asyncio.wait_for(proc.stdout.read(), 5)
    except asyncio.TimeoutError:
        pass
    await proc.wait()


async def spawn_shim(bundle: str, python: str = sys.executable) -> ShimInfo:
    """Start the shim for ``bundle`` (its shim.json written); return once the container is created."""
    bundle = os.path.abspath(bundle)
    config = _read_config(bundle)
    with open(os.path.join(bundle, "shim.log"), "ab") as errlog:
        proc = await asyncio.create_subprocess_exec(
            *shim_argv(python), bundle, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=errlog, start_new_session=True)
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    await _drain(proc)
    return _result(config, bundle, line)


class ShimLauncher:
    """Starts shims, keeping one started ahead of time (interpreter up, modules imported, detached).

    The warm shim waits for a bundle path on its stdin; handing it one saves the interpreter's
    start on every `docker start`. If the daemon goes away, the warm shim reads EOF and exits.
    """

    def __init__(self, python: str = sys.executable, log_path: str = os.devnull, owner: str = "") -> None:
        self.python = python
        self.log_path = log_path
        self.owner = owner  # shown in the warm shim's command line (the daemon's exec root), for ps and sweeps
        self._warm: asyncio.Task[asyncio.subprocess.Process] | None = None

    async def _start_warm(self) -> asyncio.subprocess.Process:
        from .main import WARM_FLAG

        with open(self.log_path, "ab") as errlog:
            proc = await asyncio.create_subprocess_exec(
                *shim_argv(self.python), WARM_FLAG, *([self.owner] if self.owner else []),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=errlog, start_new_session=True)
        return proc

    def prepare(self) -> None:
        """Start the next warm shim in the background (if none is on its way)."""
        if self._warm is None:
            self._warm = asyncio.ensure_future(self._start_warm())

    async def spawn(self, bundle: str) -> ShimInfo:
        bundle = os.path.abspath(bundle)
        warm, self._warm = self._warm, None
        self.prepare()
        if warm is None or not warm.done() or warm.exception() is not None:
            if warm is not None:
                warm.cancel()
            return await spawn_shim(bundle, self.python)
        proc = warm.result()
        assert proc.stdin is not None and proc.stdout is not None
        config = _read_config(bundle)
        try:
            proc.stdin.write(bundle.encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):  # it died idle: it never saw this bundle
            return await spawn_shim(bundle, self.python)
        line = await proc.stdout.readline()
        await _drain(proc)
        return _result(config, bundle, line)

    async def close(self) -> None:
        warm, self._warm = self._warm, None
        if warm is None:
            return
        try:
            proc = await warm
        except (OSError, asyncio.CancelledError):
            return
        if proc.stdin is not None:
            proc.stdin.close()
        await proc.wait()


class ShimStream:
    """An attach or exec stream: read output, write stdin, half-close for EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, n: int = 65536) -> bytes:
        return await self.reader.read(n)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        """Half-close: the shim sees EOF (stdin_once closes the process's stdin)."""
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        await _close(self.writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


class ShimClient:
    """Operations on one shim's socket."""

    def __init__(self, socket_path: str, exit_file: str | None = None) -> None:
        self.socket_path = socket_path
        self.exit_file = exit_file

    def exit_record(self) -> dict[str, Any] | None:
        """The shim's exit record, once it wrote one (the shim exits right after)."""
        if not self.exit_file:
            return None
        try:
            with open(self.exit_file, "rb") as f:
                record = protocol.loads(f.read())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    async def _open(self, request: dict[str, Any]) -> tuple[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=1 << 20)
        except OSError as e:
            raise ShimError(f"shim is not reachable at {self.socket_path}: {e}") from None
        try:
            writer.write(protocol.encode_line(request))
            await writer.drain()
            line = await reader.readline()
        except OSError as e:  # the shim exited while we connected
            line = b""
            reason = str(e)
        else:
            reason = "no reply"
        if not line:
            await _close(writer)
            raise ShimError(f"shim closed the connection without replying: {reason}")
        reply = protocol.loads(line)
        if not reply.get("ok"):
            await _close(writer)
            raise error_for(str(reply.get("error") or "shim request failed"))
        return reply, reader, writer

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request, one reply."""
        reply, _, writer = await self._open({"op": op, **fields})
        await _close(writer)
        return reply

    async def start(self) -> None:
        await self.call("start")

    async def state(self) -> dict[str, Any]:
        """The shim's state; "stopped" from the exit record when the shim is gone."""
        try:
            return await self.call("state")
        except ShimError:
            record = self.exit_record()
            if record is None:
                raise
            return {"ok": True, "status": "stopped", "pid": 0, **record}

    async def wait(self) -> dict[str, Any]:
        """Blocks until init exits: {"exit_code", "exited_at"} (from the exit record once the shim left)."""
        try:
            return await self.call("wait")
        except ShimError:
            record = self.exit_record()
            if record is None:
                raise
            return {"ok": True, **record}

    async def resize(self, height: int, width: int, exec_id: str | None = None) -> None:
        await self.call("resize", height=height, width=width, **({"exec_id": exec_id} if exec_id else {}))

    async def shutdown(self) -> None:
        await self.call("shutdown")

    async def attach(self, stdin: bool = False, stdout: bool = True, stderr: bool = True) -> ShimStream:
        _, reader, writer = await self._open({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})
        return ShimStream(reader, writer)

    async def exec(self, exec_id: str, process: dict[str, Any], *, detach: bool = False,
                   stdin: bool = False) -> tuple[int, ShimStream | None]:
        """Start an exec; unless detached, also its output/stdin stream."""
        reply, reader, writer = await self._open(
            {"op": "exec", "exec_id": exec_id, "process": process, "detach": detach, "stdin": stdin})
        if detach:
            await _close(writer)
            return int(reply["pid"]), None
        return int(reply["pid"]), ShimStream(reader, writer)

    async def exec_wait(self, exec_id: str) -> int:
        return int((await self.call("exec_wait", exec_id=exec_id))["exit_code"])


def demux(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split multiplexed frames: ([(stream, payload)...], leftover partial bytes)."""
    frames = []
    while len(data) >= 8:
        stream, size = protocol.HEADER.unpack(data[:8])
        if len(data) < 8 + size:
            break
        frames.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return frames, data
