"""`docker exec`: exec instances (in memory, like dockerd's), started through the container's shim."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon import names
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.spec import exec_process
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.supervisor.shim.client import ShimStream

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon


@dataclass
class Exec:
    id: str
    container: Container
    config: dict[str, Any]
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        process = {"tty": bool(self.config.get("Tty")), "entrypoint": cmd[0] if cmd else "", "arguments": cmd[1:],
                   "privileged": bool(self.config.get("Privileged"))}
        if self.config.get("User"):
            process["user"] = self.config["User"]
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": process,
                "OpenStdin": bool(self.config.get("AttachStdin")), "OpenStderr": bool(self.config.get("AttachStderr")),
                "OpenStdout": bool(self.config.get("AttachStdout")), "CanRemove": False,
                "ContainerID": self.container.id, "DetachKeys": self.config.get("DetachKeys") or "",
                "Pid": self.pid}


class ExecService:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.execs: dict[str, Exec] = {}

    def create(self, c: Container, body: dict[str, Any], ref: str = "") -> Exec:
        if not c.running or c.state.get("Restarting"):
            raise Conflict(f"Container {c.id} is not running")
        if c.paused:  # dockerd names the container as the client did here
            raise Conflict(f"Container {ref or c.id} is paused, unpause the container before exec")
        if not body.get("Cmd"):
            raise InvalidArgument("No exec command specified")
        e = Exec(names.new_id(), c, dict(body))
        self.execs[e.id] = e
        c.exec_ids.append(e.id)
        self.daemon.containers.emit(c, f"exec_create: {' '.join(body['Cmd'])}", execID=e.id)
        return e

    def get(self, id: str) -> Exec:
        e = self.execs.get(id)
        if e is None:
            raise NotFound(f"No such exec instance: {id}")
        return e

    async def start(self, e: Exec, *, detach: bool) -> ShimStream | None:
        if e.started:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = e.container
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        shim = self.daemon.containers.shim(c)
        bundle = os.path.join(self.daemon.config.exec_root, c.id)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        process = exec_process(spec, e.config, os.path.join(self.daemon.containers.store.dir(c.id), "rootfs"),
                               container_config=c.config, host_config=c.host_config,
                               link_env=self.daemon.networks.endpoints.link_env(c))
        e.started = True
        try:
            pid, stream = await shim.exec(e.id, process, detach=detach, stdin=bool(e.config.get("AttachStdin")))
        except DockyardError as err:  # dockerd: the exec "ran" and failed with 126
            e.exit_code = 126
            e.done.set()
            raise DockyardError(f"OCI runtime exec failed: exec failed: {err}: unknown") from None
        e.pid, e.running = pid, True
        self.daemon.containers.emit(c, f"exec_start: {' '.join(e.config['Cmd'])}", execID=e.id)
        asyncio.create_task(self._watch(e, shim))
        return stream

    async def _watch(self, e: Exec, shim: Any) -> None:
        try:
            e.exit_code = await shim.exec_wait(e.id)
        except Exception:
            e.exit_code = 126 if e.exit_code is None else e.exit_code
        e.running = False
        e.done.set()
        self.daemon.containers.emit(e.container, "exec_die", execID=e.id, exitCode=str(e.exit_code))

    def forget(self, c: Container) -> None:
        for id in list(c.exec_ids):
            self.execs.pop(id, None)
        c.exec_ids.clear()
