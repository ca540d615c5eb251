"""The container service: create, start, stop, kill, wait, remove... and what happens on exit.

State changes happen on the event loop; blocking work (mounts, snapshots, files) goes through
`daemon.run_blocking`. Each run of a container has a shim (dockyard.supervisor.shim); a
monitor task waits on it and handles the exit: cleanup, record, events, waiters, restart policy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal as _signal
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon import names
from dockyard.engine.daemon.containers import initlayer, task
from dockyard.engine.daemon.containers.create import build_container, mount_point_json, pick_name
from dockyard.engine.daemon.containers.health import HealthMonitors
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.containers.runs import RunControl, parse_signal
from dockyard.engine.daemon.containers.store import ContainerStore
from dockyard.engine.daemon.spec.mounts import MountPoint
from dockyard.engine.daemon.timefmt import now_rfc3339
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, NotModified
from dockyard.supervisor.shim.client import ShimClient, ShimError, ShimStream

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

log = logging.getLogger("dockyard.engine")


@dataclasses.dataclass
class PendingAttach:
    stdin: bool
    stdout: bool
    stderr: bool
    future: asyncio.Future[ShimStream | None]


class ContainerService(RunControl):
    """All containers of the daemon and their runs."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.store = ContainerStore(os.path.join(daemon.config.data_root, "containers"))
        self.shims: dict[str, ShimClient] = {}
        self.monitors: dict[str, asyncio.Task[None]] = {}
        self.exit_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = defaultdict(list)
        self.remove_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = defaultdict(list)
        self.pending_attach: dict[str, list[PendingAttach]] = defaultdict(list)
        self.stopped: dict[str, asyncio.Event] = {}
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.restarts: dict[str, asyncio.Task[None]] = {}
        self.removing: set[str] = set()
        self.shim_deletes: set[str] = set()   # containers whose last shim deletes the runtime's state
        self.health = HealthMonitors(self)

    # -- lookups --------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def paths(self, c: Container) -> task.Paths:
        return task.Paths(self.daemon, c)

    def counts(self) -> tuple[int, int, int, int]:
        """(total, running, paused, stopped) for `docker info`."""
        cs = list(self.store)
        running = sum(1 for c in cs if c.running and not c.paused)
        paused = sum(1 for c in cs if c.paused)
        return len(cs), running, paused, len(cs) - running - paused

    def image_users(self, image_id: str) -> list[str]:
        return [c.id for c in self.store if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.store if any(m.get("Name") == name for m in c.mount_points)]

    def stopped_event(self, c: Container) -> asyncio.Event:
        """Set when the current run ends (logs -f stops following)."""
        ev = self.stopped.get(c.id)
        if ev is None:
            ev = self.stopped[c.id] = asyncio.Event()
            if not c.running:
                ev.set()
        return ev

    def emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {**{k: str(v) for k, v in (c.config.get("Labels") or {}).items()},
                 "image": c.image_ref, "name": c.bare_name, **extra}
        self.daemon.events.emit("container", action, c.id, attrs)

    # -- create -----------------------------------------------------------------------------------
    async def create(self, name: str, body: dict[str, Any]) -> tuple[Container, list[str]]:
        cid = names.new_id()
        full_name = pick_name(self.daemon, name)
        self.store.reserve(full_name, cid)  # concurrent creates must not pick the same name
        try:
            c, mounts, warnings = await build_container(self.daemon, cid, full_name, body)
            return await self._create_snapshots(c, mounts, warnings)
        finally:
            self.store.release(full_name, cid)

    async def _create_snapshots(self, c: Container, mounts: list[MountPoint],
                                warnings: list[str]) -> tuple[Container, list[str]]:
        sn_name = self.daemon.snapshotter_name
        images = self.daemon.images

        def prepare() -> None:
            parent = images.unpack(c.image_id, sn_name)
            initlayer.prepare_container(images.snapshotter(sn_name), c.id, parent or None)

        t0 = time.monotonic()
        await self.daemon.run_blocking(prepare)
        log.debug("create %s: snapshots %.1f ms", c.short_id, (time.monotonic() - t0) * 1000)
        c.snapshot_key = c.id
        try:
            resolved = [await self._resolve_volume(c, m) for m in mounts]
            c.mount_specs = [dataclasses.asdict(m) for m in resolved]
            c.mount_points = [mount_point_json(m) for m in resolved if m.listed]
            self.store.add(c)
        except BaseException:
            await self.daemon.run_blocking(initlayer.remove_container, images.snapshotter(sn_name), c.id)
            raise
        self.emit(c, "create")
        return c, warnings

    async def _resolve_volume(self, c: Container, m: MountPoint) -> MountPoint:
        if m.type != "volume":
            return m
        vols = self.daemon.volumes
        if m.name:
            info = await self.daemon.run_blocking(vols.create, m.name, m.driver or "local", None, None)
        else:
            info = await self.daemon.run_blocking(vols.create_anonymous)
        return dataclasses.replace(m, name=info["Name"], source=info["Mountpoint"], driver=info["Driver"])

    # -- start --------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with self.locks[c.id]:
            if c.id in self.removing:
                raise Conflict(f"Container {c.id} is marked for removal and cannot be started.")
            if c.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.running and not c.state.get("Restarting"):
                raise NotModified("container already started")
            self._cancel_restart(c)
            c.manually_stopped = False
            await self._start_locked(c)

    async def _start_locked(self, c: Container) -> None:
        paths = self.paths(c)
        await self._await_runtime_delete(c)
        mounts = [MountPoint(**{**m, "tmpfs_options": tuple(m.get("tmpfs_options") or ())}) for m in c.mount_specs]
        vols = self.daemon.volumes
        net = self.daemon.networks.endpoints
        mounted: list[str] = []
        try:
            network_ns = await net.setup(c)
        except DockyardError as e:  # unknown network, address in use, port taken: said as is
            await self._undo_start(c, paths, mounted)
            self._record_start_failure(c, e, runtime=False)
            raise
        try:
            await self.daemon.run_blocking(task.mount_rootfs, self.daemon, c, paths)
            resolved = []
            for m in mounts:
                if m.type == "volume":
                    source = await self.daemon.run_blocking(vols.mount, m.name, c.id)
                    mounted.append(m.name)
                    if m.copy_data:
                        src = os.path.join(paths.rootfs, m.destination.lstrip("/"))
                        await self.daemon.run_blocking(vols.copy_up, m.name, src)
                    m = dataclasses.replace(m, source=source)
                resolved.append(m)
            t0 = time.monotonic()
            await self.daemon.run_blocking(task.build_bundle, self.daemon, c, paths, resolved, network_ns,
                                           net.files_for(c), net.shared_files(c), net.link_env(c))
            t1 = time.monotonic()
            info = await self.daemon.shim_launcher.spawn(paths.bundle)
            log.debug("start %s: bundle %.1f ms, shim+create %.1f ms", c.short_id, (t1 - t0) * 1000,
                      (time.monotonic() - t1) * 1000)
        except (ShimError, NotFound) as e:  # the shim reports runtime failures (a missing command: NotFound)
            await self._undo_start(c, paths, mounted)
            raise self._record_start_failure(c, e) from None
        except BaseException as e:
            await self._undo_start(c, paths, mounted)
            self._record_start_failure(c, e)
            raise
        client = ShimClient(info.socket, paths.exit_file)
        self.shims[c.id] = client
        await self._connect_pending(c, client)
        t2 = time.monotonic()
        try:
            await client.start()
            log.debug("start %s: runtime start %.1f ms", c.short_id, (time.monotonic() - t2) * 1000)
        except ShimError as e:
            await self._kill_failed(c, client, paths, mounted)
            raise self._record_start_failure(c, e) from None
        except BaseException as e:
            await self._kill_failed(c, client, paths, mounted)
            self._record_start_failure(c, e)
            raise
        c.set_running(info.pid, now_rfc3339())
        self.health.start(c)
        self.stopped[c.id] = asyncio.Event()
        self.store.save(c)
        self.emit(c, "start")
        self.monitors[c.id] = asyncio.create_task(self._monitor(c, client))

    async def _await_runtime_delete(self, c: Container, timeout: float = 5.0) -> None:
        """The previous run's shim deletes the runtime's state after it reported the exit: let it finish."""
        rt = self.daemon.runtime(c.runtime)
        deadline = time.monotonic() + timeout
        while rt.has_state(c.id) and rt.root is not None:
            if time.monotonic() > deadline:
                await rt.delete(c.id)
                return
            await asyncio.sleep(0.01)
        self.shim_deletes.discard(c.id)

    def _record_start_failure(self, c: Container, e: BaseException, runtime: bool = True) -> DockyardError:
        """Record a failed start like dockerd (exit code 127/126/128, State.Error); the error to raise.

        The runtime only says what went wrong in words, so its message decides, as in dockerd:
        a missing or non-executable command is the user's config (400), the rest is ours (500).
        """
        message = str(e)
        runtime = runtime and isinstance(e, (ShimError, NotFound))
        if runtime:
            message = f"OCI runtime create failed: {message}: unknown"
        missing = "executable file not found" in message or "no such file or directory" in message
        denied = "permission denied" in message
        code = 127 if missing else 126 if denied else 128
        if isinstance(e, DockyardError):
            if c.has_been_started:
                c.set_exited(code, c.state.get("FinishedAt") or now_rfc3339(), error=message)
            else:  # never ran: dockerd keeps it "created", with the code and the error
                c.state.update(ExitCode=code, Error=message)
            self.store.save(c)
            if c.host_config.get("AutoRemove"):
                asyncio.create_task(self._auto_remove(c))
        if runtime:
            return InvalidArgument(message) if (missing or denied) else DockyardError(message)
        return e if isinstance(e, DockyardError) else DockyardError(message)

    async def _connect_pending(self, c: Container, client: ShimClient) -> None:
        for p in self.pending_attach.pop(c.id, []):
            if p.future.done():
                continue
            try:
                stream = await client.attach(p.stdin, p.stdout, p.stderr)
            except DockyardError:
                p.future.set_result(None)
                continue
            if p.future.done():
                await stream.close()
            else:
                p.future.set_result(stream)

    async def _undo_start(self, c: Container, paths: task.Paths, volumes: list[str]) -> None:
        for name in volumes:
            try:
                await self.daemon.run_blocking(self.daemon.volumes.unmount, name, c.id)
            except DockyardError:
                pass
        await self.daemon.networks.endpoints.teardown(c)
        await self.daemon.run_blocking(task.unmount_rootfs, paths)
        await self.daemon.run_blocking(task.remove_bundle, paths)
        self.shims.pop(c.id, None)
        for p in self.pending_attach.pop(c.id, []):  # the start failed: attached clients get EOF
            if not p.future.done():
                p.future.set_result(None)

    async def _kill_failed(self, c: Container, client: ShimClient, paths: task.Paths, volumes: list[str]) -> None:
        try:
            await self.daemon.runtime(c.runtime).kill(c.id, _signal.SIGKILL, all=True)
        except DockyardError:
            pass
        try:
            await asyncio.wait_for(client.wait(), 10)
        except (DockyardError, asyncio.TimeoutError, OSError):
            await self.daemon.runtime(c.runtime).delete(c.id)
        await self._undo_start(c, paths, volumes)

    # -- signals, stop, wait ---------------------------------------------------------------------
    async def kill(self, ref: str, sig: str | int | None) -> None:
        signum = parse_signal(sig)  # dockerd checks the signal before looking the container up
        try:
            c = self.get(ref)
        except NotFound as e:
            raise NotFound(f"Cannot kill container: {ref}: {e}", id=ref) from None
        if not c.running or c.state.get("Restarting"):
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signum == _signal.SIGKILL:
            c.manually_stopped = c.manually_stopped  # a kill is not a stop: restart policies still apply
        await self._signal(c, signum)
        self.emit(c, "kill", signal=str(signum))

    async def stop(self, ref: str, timeout: int | None) -> None:
        c = self.get(ref)
        if c.state.get("Restarting"):
            c.manually_stopped = True
            self._cancel_restart(c)
            self.store.save(c)
            return
        if not c.running:
            raise NotModified("container already stopped")
        c.manually_stopped = True
        self.store.save(c)
        await self._stop_run(c, timeout)
        self.emit(c, "stop")

    async def restart(self, ref: str, timeout: int | None) -> None:
        c = self.get(ref)
        if c.running and not c.state.get("Restarting"):
            c.manually_stopped = True
            await self._stop_run(c, timeout)
        async with self.locks[c.id]:
            self._cancel_restart(c)
            c.manually_stopped = False
            if not c.running:
                await self._start_locked(c)
        self.emit(c, "restart")

    async def wait(self, ref: str, condition: str) -> asyncio.Future[dict[str, Any]]:
        """A future with {"StatusCode", "Error"} once the condition holds (the caller awaits it)."""
        c = self.get(ref)
        condition = condition or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: \"{condition}\"")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        if condition == "removed":
            self.remove_waiters[c.id].append(fut)
        elif condition == "not-running" and not c.running:
            fut.set_result({"StatusCode": int(c.state.get("ExitCode") or 0), "Error": None})
        else:
            self.exit_waiters[c.id].append(fut)
        return fut

    # -- pause, update, rename ----------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.running or c.state.get("Restarting"):
            raise Conflict(f"Container {c.id} is not running")
        if c.paused:
            raise Conflict(f"Container {c.id} is already paused")
        await self.daemon.runtime(c.runtime).pause(c.id)
        c.set_paused(True)
        self.health.stop(c)
        self.store.save(c)
        self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.paused:
            raise Conflict(f"Container {c.id} is not paused")
        await self.daemon.runtime(c.runtime).resume(c.id)
        c.set_paused(False)
        self.health.start(c, reset=False)
        self.store.save(c)
        self.emit(c, "unpause")

    async def rename(self, ref: str, new_name: str) -> None:
        from dockyard.engine.daemon import names
        c = self.get(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        full = names.validate_name(new_name)
        if full == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        old = c.bare_name
        try:
            self.store.rename(c, full)
        except Conflict as e:
            raise Conflict(f"Error when allocating new name: {e}") from None
        self.emit(c, "rename", oldName="/" + old)

    # -- networks -------------------------------------------------------------------------------
    async def connect_network(self, net_ref: str, ref: str, cfg: dict[str, Any]) -> None:
        c = self.get(ref)
        n = self.daemon.networks.find(net_ref)
        async with self.locks[c.id]:
            await self.daemon.networks.endpoints.connect(c, n, cfg)
            self.store.save(c)

    async def disconnect_network(self, net_ref: str, ref: str, force: bool) -> None:
        c = self.get(ref)
        n = self.daemon.networks.find(net_ref)
        async with self.locks[c.id]:
            await self.daemon.networks.endpoints.disconnect(c, n)
            self.store.save(c)

    # -- remove ---------------------------------------------------------------------------------
    async def remove(self, ref: str, *, force: bool, volumes: bool) -> None:
        c = self.get(ref)
        if c.id in self.removing:
            raise Conflict(f"removal of container {ref} is already in progress")
        if c.running and not c.state.get("Restarting"):
            if not force:
                if c.paused:
                    raise Conflict(f"You cannot remove a paused container {c.id}. Unpause and then stop the "
                                   "container before attempting removal or force remove")
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                               "attempting removal or force remove")
        self.removing.add(c.id)
        try:
            self._cancel_restart(c)
            if c.running:
                await self._kill_and_wait(c)
            await self._destroy(c, volumes)
        finally:
            self.removing.discard(c.id)

    async def _destroy(self, c: Container, volumes: bool) -> None:
        t0 = time.monotonic()
        self.health.stop(c)
        paths = self.paths(c)
        if c.id in self.shim_deletes:  # the last shim deletes the runtime's state: let it finish
            await self._await_runtime_delete(c)
        else:
            await self.daemon.runtime(c.runtime).delete(c.id)
        await self.daemon.run_blocking(task.unmount_rootfs, paths)
        await self.daemon.run_blocking(task.remove_bundle, paths)
        sn = self.daemon.images.snapshotter(self.daemon.snapshotter_name)
        await self.daemon.run_blocking(initlayer.remove_container, sn, c.snapshot_key)
        self.store.delete(c)
        log.debug("remove %s: %.1f ms", c.short_id, (time.monotonic() - t0) * 1000)
        code = int(c.state.get("ExitCode") or 0)
        for m in c.mount_points:
            if m.get("Type") == "volume" and volumes and len(m.get("Name", "")) == 64 and \
                    not self.volume_users(m["Name"]):
                try:
                    await self.daemon.run_blocking(self.daemon.volumes.remove, m["Name"], False)
                except DockyardError:
                    pass
        self.emit(c, "destroy")
        for fut in self.remove_waiters.pop(c.id, []) + self.exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result({"StatusCode": code, "Error": None})
        self.stopped.pop(c.id, None)
        self.locks.pop(c.id, None)

    # -- attach -----------------------------------------------------------------------------------
    async def attach_stream(self, c: Container, stdin: bool, stdout: bool, stderr: bool) -> ShimStream | None:
        """The live stream of the current run, or of the next one if the container is not running."""
        client = self.shims.get(c.id)
        if client is not None and c.running:
            return await client.attach(stdin, stdout, stderr)
        fut: asyncio.Future[ShimStream | None] = asyncio.get_running_loop().create_future()
        self.pending_attach[c.id].append(PendingAttach(stdin, stdout, stderr, fut))
        try:
            return await fut
        finally:
            if not fut.done():
                fut.cancel()

    def shim(self, c: Container) -> ShimClient:
        client = self.shims.get(c.id)
        if client is None or not c.running:
            raise Conflict(f"Container {c.id} is not running")
        return client

    # -- daemon start and stop ---------------------------------------------------------------------
    async def restore(self) -> None:
        from dockyard.engine.daemon.containers.restore import restore
        await restore(self)

    async def shutdown(self, *, live_restore: bool) -> None:
        self.health.stop_all()
        for t in list(self.restarts.values()):
            t.cancel()
        if not live_restore:
            running = [c for c in self.store if c.running]
            await asyncio.gather(*(self._stop_run(c, None) for c in running), return_exceptions=True)
        for t in list(self.monitors.values()):
            t.cancel()
