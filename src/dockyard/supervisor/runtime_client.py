"""The OCI runtime's command line (runc, dockyard-runtime, crun), called from asyncio.

An adapter: the only place the engine runs the runtime binary itself (the shim runs create,
start and exec). Errors carry the runtime's own message, read from its JSON log when it wrote
one, else from stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from dockyard.errors import Conflict, DockyardError, NotFound


@dataclass(frozen=True)
class RuntimeClient:
    """One runtime binary with its global flags (``--root`` ...)."""

    path: str
    global_args: tuple[str, ...] = ()

    async def run(self, *args: str, input: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.path, *self.global_args, *args, stdin=asyncio.subprocess.PIPE if input is not None else
            asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input)
        if proc.returncode != 0:
            raise _error(err.decode(errors="replace"), args)
        return out

    async def kill(self, id: str, signal: int, *, all: bool = False) -> None:
        await self.run("kill", *(["--all"] if all else []), id, str(signal))

    async def pause(self, id: str) -> None:
        await self.run("pause", id)

    async def resume(self, id: str) -> None:
        await self.run("resume", id)

    async def update(self, id: str, resources: dict[str, Any]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(resources, f)
        try:
            await self.run("update", "--resources", f.name, id)
        finally:
            os.unlink(f.name)

    async def pids(self, id: str) -> list[int]:
        out = await self.run("ps", "--format", "json", id)
        return [int(p) for p in json.loads(out or b"[]") or []]

    async def state(self, id: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(await self.run("state", id)))
        except NotFound:
            return None

    @property
    def root(self) -> str | None:
        """The ``--root`` state directory given in the global flags, if any."""
        args = list(self.global_args)
        return args[args.index("--root") + 1] if "--root" in args[:-1] else None

    def has_state(self, id: str) -> bool:
        """Whether the runtime still keeps state for ``id`` (true when the root is unknown)."""
        return self.root is None or os.path.exists(os.path.join(self.root, id))

    async def delete(self, id: str, *, force: bool = True) -> None:
        if not self.has_state(id):  # the shim already deleted it: skip a runtime call
            return
        try:
            await self.run("delete", *(["--force"] if force else []), id)
        except NotFound:
            pass


def _error(stderr: str, args: tuple[str, ...]) -> DockyardError:
    message = _last_message(stderr) or f"runtime {args[0]} failed"
    if "does not exist" in message or "not found" in message:
        return NotFound(message)
    if "not running" in message or "not paused" in message or "paused" in message:
        return Conflict(message)
    return DockyardError(message)


def _last_message(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            return str(json.loads(line).get("msg", line))
        except (ValueError, AttributeError):
            return line
    return ""
