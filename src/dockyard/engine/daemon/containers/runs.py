"""What happens to a container's run after it started: signals, stopping, the exit, restart policies.

A mixin of ContainerService (service.py), which owns the state listed below. The exit is handled
once, whichever way it is learnt: the shim's answer to `wait`, its exit record after a daemon
restart, or the container killed and cleaned up without a shim that stopped answering.
"""

from __future__ import annotations

import asyncio
import logging
import signal as _signal
import time
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon.containers import task
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.timefmt import now_rfc3339
from dockyard.errors import DockyardError
from dockyard.supervisor.shim.client import ShimClient, ShimError

if TYPE_CHECKING:
    from dockyard.engine.daemon.containers.health import HealthMonitors
    from dockyard.engine.daemon.containers.store import ContainerStore
    from dockyard.engine.daemon.daemon import Daemon

log = logging.getLogger("dockyard.engine")
RESTART_BASE_DELAY = 0.1
RESTART_MAX_DELAY = 60.0


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    """"KILL", "SIGKILL", "9" -> 9; Docker's message on junk."""
    from dockyard.errors import InvalidArgument
    if value in (None, ""):
        return default
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < 65:
            return num
        raise InvalidArgument(f"Invalid signal: {value}")
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(_signal, name))
    except AttributeError:
        raise InvalidArgument(f"Invalid signal: {value}") from None


class RunControl:
    """Signals, stop, exit handling and restart policies (mixed into ContainerService)."""

    daemon: Daemon
    store: ContainerStore
    shims: dict[str, ShimClient]
    monitors: dict[str, asyncio.Task[None]]
    exit_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]]
    locks: dict[str, asyncio.Lock]
    restarts: dict[str, asyncio.Task[None]]
    removing: set[str]
    shim_deletes: set[str]
    health: HealthMonitors

    def paths(self, c: Container) -> task.Paths:
        raise NotImplementedError

    def emit(self, c: Container, action: str, **extra: str) -> None:
        raise NotImplementedError

    def stopped_event(self, c: Container) -> asyncio.Event:
        raise NotImplementedError

    async def remove(self, ref: str, *, force: bool, volumes: bool) -> None:
        raise NotImplementedError

    async def _start_locked(self, c: Container) -> None:
        raise NotImplementedError

    async def _await_runtime_delete(self, c: Container, timeout: float = 5.0) -> None:
        raise NotImplementedError

    async def _monitor(self, c: Container, client: ShimClient) -> None:
        try:
            result = await client.wait()
            self.shim_deletes.add(c.id)  # the shim runs `runtime delete` itself after answering
        except (ShimError, OSError) as e:
            record = client.exit_record()
            if record is None:
                log.warning("container %s: lost its shim (%s); marking it exited", c.short_id, e)
                await self._reap_orphan(c)
                record = {"exit_code": 255, "exited_at": now_rfc3339(), "error": "the container's shim died"}
            result = record
        await self._handle_exit(c, int(result.get("exit_code", 255)), str(result.get("exited_at") or now_rfc3339()),
                                str(result.get("error") or ""), oom=bool(result.get("oom_killed")))

    async def _reap_orphan(self, c: Container) -> None:
        rt = self.daemon.runtime(c.runtime)
        try:
            await rt.kill(c.id, _signal.SIGKILL, all=True)
        except DockyardError:
            pass
        await asyncio.sleep(0.1)
        await rt.delete(c.id)

    async def _handle_exit(self, c: Container, code: int, exited_at: str, error: str = "", *,
                           oom: bool = False) -> None:
        """Record the exit and tell everyone (oom, die), then clean up, then wake waiters and restart."""
        t0 = time.monotonic()
        self.health.stop(c)
        paths = self.paths(c)
        self.shims.pop(c.id, None)
        self.monitors.pop(c.id, None)
        c.set_exited(code, exited_at, error=error, oom=oom)
        restart = self._should_restart(c, code)
        if restart:
            c.set_restarting()
        self.store.save(c)
        if oom:
            self.emit(c, "oom")
        self.emit(c, "die", exitCode=str(code))
        async with self.locks[c.id]:  # a start waits until this run is cleaned up
            for m in c.mount_specs:
                if m["type"] == "volume":
                    try:
                        await self.daemon.run_blocking(self.daemon.volumes.unmount, m["name"], c.id)
                    except DockyardError:
                        pass
            await self.daemon.run_blocking(task.unmount_rootfs, paths)
            await self.daemon.run_blocking(task.remove_bundle, paths)
            await self.daemon.networks.endpoints.teardown(c)
            self.store.save(c)
            # The shim runs `runtime delete` beside this cleanup; like dockerd, report the exit only
            # once the runtime's state and cgroups are gone.
            if c.id in self.shim_deletes:
                await self._await_runtime_delete(c)
        self.stopped_event(c).set()
        log.debug("exit %s: recorded in %.1f ms", c.short_id, (time.monotonic() - t0) * 1000)
        result = {"StatusCode": code, "Error": {"Message": error} if error else None}
        for fut in self.exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(result)
        if c.host_config.get("AutoRemove") and c.id not in self.removing:
            asyncio.create_task(self._auto_remove(c))
        elif restart:
            self._schedule_restart(c)

    async def _auto_remove(self, c: Container) -> None:
        try:
            await self.remove(c.id, force=True, volumes=True)
        except DockyardError as e:
            log.warning("auto-remove of %s: %s", c.short_id, e)

    def _should_restart(self, c: Container, code: int) -> bool:
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if c.manually_stopped or c.id in self.removing or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return code != 0 and (limit == 0 or c.restart_count < limit)
        return name in ("always", "unless-stopped")

    def _schedule_restart(self, c: Container) -> None:
        started = c.state.get("StartedAt") or ""
        delay = min(RESTART_MAX_DELAY, RESTART_BASE_DELAY * (2 ** min(c.restart_count, 10)))
        ran = _seconds_between(started, c.state.get("FinishedAt") or "")
        if ran is not None and ran >= 10:
            delay = RESTART_BASE_DELAY

        async def later() -> None:
            await asyncio.sleep(delay)
            async with self.locks[c.id]:
                self.restarts.pop(c.id, None)
                if c.id in self.removing or c.manually_stopped or c.id not in {x.id for x in self.store}:
                    return
                c.restart_count += 1
                try:
                    await self._start_locked(c)
                    self.emit(c, "restart")
                except DockyardError as e:
                    log.warning("restart of %s failed: %s", c.short_id, e)
                    if self._should_restart(c, int(c.state.get("ExitCode") or 1)):
                        c.set_restarting()
                        self.store.save(c)
                        self._schedule_restart(c)

        self.restarts[c.id] = asyncio.create_task(later())

    def _cancel_restart(self, c: Container) -> None:
        t = self.restarts.pop(c.id, None)
        if t is not None:
            t.cancel()
        if c.state.get("Restarting"):
            c.set_exited(int(c.state.get("ExitCode") or 0), c.state.get("FinishedAt") or now_rfc3339())

    async def _signal(self, c: Container, signum: int) -> None:
        rt = self.daemon.runtime(c.runtime)
        await rt.kill(c.id, signum)
        if c.paused and signum == _signal.SIGKILL:
            try:
                await rt.resume(c.id)
            except DockyardError:
                pass

    async def _stop_run(self, c: Container, timeout: int | None) -> None:
        if timeout is None:
            configured = c.config.get("StopTimeout")
            timeout = int(configured) if configured is not None else 10
        sig = parse_signal(c.config.get("StopSignal"), _signal.SIGTERM)
        waiter = self._exit_future(c)
        try:
            await self._signal(c, sig)
        except DockyardError:
            pass
        if timeout >= 0:
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
                return
            except asyncio.TimeoutError:
                pass
        await self._kill_and_wait(c)

    async def _kill_and_wait(self, c: Container, timeout: float = 30) -> None:
        """SIGKILL and wait for the exit; if the shim never reports it, clean up as for a dead shim."""
        waiter = self._exit_future(c)
        try:
            await self._signal(c, _signal.SIGKILL)
        except DockyardError:
            pass
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            log.warning("container %s: no exit %ss after SIGKILL; cleaning up without its shim", c.short_id, timeout)
            monitor = self.monitors.get(c.id)
            if monitor is not None:
                monitor.cancel()
            await self._reap_orphan(c)
            if c.running:
                await self._handle_exit(c, 137, now_rfc3339(), "the container did not report its exit")

    def _exit_future(self, c: Container) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not c.running:
            fut.set_result({"StatusCode": int(c.state.get("ExitCode") or 0), "Error": None})
        else:
            self.exit_waiters[c.id].append(fut)
        return fut


def _seconds_between(a: str, b: str) -> float | None:
    from dockyard.engine.daemon.timefmt import parse_rfc3339
    try:
        return (parse_rfc3339(b) - parse_rfc3339(a)) / 1e9
    except (DockyardError, ValueError):
        return None
