"""Container healthchecks (Config.Healthcheck), with Docker 20.10's semantics.

A running, unpaused container whose Healthcheck.Test is ["CMD", ...] or ["CMD-SHELL", cmd] gets a
HealthMonitor: every Interval (counted from the end of the previous probe) the command runs as an
exec through the container's shim, with Timeout. The results land in State.Health
{Status, FailingStreak, Log (last 5)}; a status change emits `health_status: <status>` and saves
the record. A start resets Status to "starting" and the streak (the Log stays, as in dockerd);
an exit or a pause only stops the monitor, so the last status stays visible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon import names
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.spec import exec_process
from dockyard.engine.daemon.timefmt import now_ns, parse_rfc3339, rfc3339_nano
from dockyard.errors import DockyardError
from dockyard.supervisor.shim.client import ShimStream, demux

if TYPE_CHECKING:
    from dockyard.engine.daemon.containers.service import ContainerService

log = logging.getLogger("dockyard.engine")

NS = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * NS
DEFAULT_TIMEOUT_NS = 30 * NS
DEFAULT_START_PERIOD_NS = 0
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
MAX_LOG_ENTRIES = 5
KILL_GRACE_S = 10.0          # how long to wait for a killed probe to be reaped

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


# -- configuration ---------------------------------------------------------------------------------
def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The argv a probe runs, or None when there is no check (absent, empty, NONE, unknown type)."""
    hc = config.get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if not test:
        return None
    kind, rest = test[0], [str(a) for a in test[1:]]
    if kind == "CMD":
        return rest
    if kind == "CMD-SHELL":
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + rest
    if kind != "NONE":
        log.warning("unknown healthcheck type %r (expected 'CMD')", kind)
    return None


def _duration(hc: dict[str, Any], key: str, default: int) -> int:
    value = int(hc.get(key) or 0)
    return value if value != 0 else default


def go_duration(ns: int) -> str:
    """A duration as Go's time.Duration prints it: "30s", "1m30s", "500ms", "1.5s", "0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 1_000)}µs"
    if u < NS:
        return f"{sign}{_fraction(u, 1_000_000)}ms"
    hours, rest = divmod(u, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{sign}{text}{_fraction(rest, NS)}s"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{len(str(unit)) - 1}d}".rstrip("0")


# -- state -------------------------------------------------------------------------------------------
def reset_health(c: Container) -> None:
    """A (re)start: Status "starting", streak 0; an existing Log is kept, as dockerd does."""
    h = c.state.get("Health")
    if isinstance(h, dict):
        h.update(Status=STARTING, FailingStreak=0)
        h.setdefault("Log", [])
    else:
        c.state["Health"] = {"Status": STARTING, "FailingStreak": 0, "Log": []}


def apply_result(c: Container, entry: dict[str, Any], start_ns: int) -> str | None:
    """Record one probe result (dockerd's handleProbeResult); the new status if it changed.

    A failure while still "starting" and inside StartPeriod (measured from State.StartedAt
    to the probe's start) does not count; once a probe succeeded the status is no longer
    "starting", so later failures always count.
    """
    hc = c.config.get("Healthcheck") or {}
    retries = int(hc.get("Retries") or 0)
    retries = retries if retries > 0 else DEFAULT_RETRIES
    h = c.state.get("Health")
    if not isinstance(h, dict):
        reset_health(c)
        h = c.state["Health"]
    old = h.get("Status") or UNHEALTHY
    h["Log"] = (list(h.get("Log") or []) + [entry])[-MAX_LOG_ENTRIES:]
    if entry["ExitCode"] == 0:
        h.update(Status=HEALTHY, FailingStreak=0)
    elif not (old == STARTING and _in_start_period(c, hc, start_ns)):
        h["FailingStreak"] = int(h.get("FailingStreak") or 0) + 1
        if h["FailingStreak"] >= retries:
            h["Status"] = UNHEALTHY
    new = h.get("Status") or UNHEALTHY
    return new if new != old else None


def _in_start_period(c: Container, hc: dict[str, Any], start_ns: int) -> bool:
    period = _duration(hc, "StartPeriod", DEFAULT_START_PERIOD_NS)
    if period <= 0:
        return False
    try:
        started = parse_rfc3339(str(c.state.get("StartedAt") or ""))
    except (DockyardError, ValueError):
        return False
    return start_ns - started < period


class LimitedBuffer:
    """stdout+stderr of a probe: the first MAX_OUTPUT bytes, "..." appended when more came."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def write(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > max(room, 0):
            self.truncated = True

    def text(self) -> str:
        out = bytes(self.data).decode("utf-8", "replace")
        return out + "..." if self.truncated else out


# -- the monitor ------------------------------------------------------------------------------------
class HealthMonitor:
    """The probe loop of one run of one container (an asyncio task between start() and stop())."""

    def __init__(self, service: ContainerService, c: Container) -> None:
        self.service = service
        self.c = c
        self.task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        """Spawn the loop if the container runs, is not paused and has a probe (else nothing)."""
        c = self.c
        if self.active or probe_command(c.config) is None or not c.running or c.paused:
            return
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"health-{c.short_id}")

    def stop(self) -> None:
        """Cancel the loop; a probe in flight is killed and its result dropped."""
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _loop(self) -> None:
        hc = self.c.config.get("Healthcheck") or {}
        interval = _duration(hc, "Interval", DEFAULT_INTERVAL_NS) / NS
        while True:
            await asyncio.sleep(interval)
            start_ns = now_ns()
            try:
                entry = await self.probe(start_ns)
            except Exception as e:  # a broken probe is a failed check, never a dead monitor
                log.warning("health check for container %s error: %s", self.c.short_id, e)
                entry = _entry(start_ns, -1, str(e))
            self._record(entry, start_ns)

    def _record(self, entry: dict[str, Any], start_ns: int) -> None:
        c = self.c
        if not c.running or c.paused:  # the run ended (or froze) while probing: dockerd drops it too
            return
        changed = apply_result(c, entry, start_ns)
        if changed is not None:
            self.service.store.save(c)
            self.service.emit(c, f"health_status: {changed}")

    async def probe(self, start_ns: int) -> dict[str, Any]:
        """Run the check once as an exec: a Log entry {Start, End, ExitCode, Output}."""
        c = self.c
        cmd = probe_command(c.config) or []
        if not cmd:
            return _entry(start_ns, -1, "healthcheck has no command")
        shim = self.service.shim(c)
        process = self._process(cmd)
        exec_id = names.new_id()
        words = f"{cmd[0]} {' '.join(cmd[1:])}"
        self.service.emit(c, f"exec_create: {words}", execID=exec_id)
        try:
            pid, stream = await shim.exec(exec_id, process, detach=False, stdin=False)
        except DockyardError as e:
            return _entry(start_ns, -1, f"OCI runtime exec failed: {e}: unknown")
        self.service.emit(c, f"exec_start: {words}", execID=exec_id)
        timeout = _duration(c.config.get("Healthcheck") or {}, "Timeout", DEFAULT_TIMEOUT_NS)
        out = LimitedBuffer()
        try:
            code = await asyncio.wait_for(_collect(shim, exec_id, stream, out), timeout / NS)
        except asyncio.TimeoutError:
            kill_probe(pid)
            await self._reaped(shim, exec_id)
            return _entry(start_ns, -1, f"Health check exceeded timeout ({go_duration(timeout)})")
        except asyncio.CancelledError:
            kill_probe(pid)
            raise
        self.service.emit(c, "exec_die", execID=exec_id, exitCode=str(code))
        return _entry(start_ns, code, out.text())

    def _process(self, cmd: list[str]) -> dict[str, Any]:
        """The OCI process of the probe: the container's, with the probe's argv, no tty, Config's user/cwd."""
        c = self.c
        with open(os.path.join(self.service.daemon.config.exec_root, c.id, "config.json")) as f:
            spec = json.load(f)
        rootfs = os.path.join(self.service.store.dir(c.id), "rootfs")
        body = {"Cmd": cmd, "Tty": False, "User": c.config.get("User") or "",
                "WorkingDir": c.config.get("WorkingDir") or ""}
        return exec_process(spec, body, rootfs, container_config=c.config, host_config=c.host_config)

    async def _reaped(self, shim: Any, exec_id: str) -> None:
        """Wait (bounded) until the killed probe is gone, so dying probes do not pile up."""
        try:
            code = await asyncio.wait_for(shim.exec_wait(exec_id), KILL_GRACE_S)
        except (DockyardError, OSError, asyncio.TimeoutError):
            return
        self.service.emit(self.c, "exec_die", execID=exec_id, exitCode=str(code))


async def _collect(shim: Any, exec_id: str, stream: ShimStream | None, out: LimitedBuffer) -> int:
    """Read the exec's multiplexed output until EOF, then its exit code."""
    if stream is not None:
        pending = b""
        try:
            while True:
                chunk = await stream.read()
                if not chunk:
                    break
                frames, pending = demux(pending + chunk)
                for _kind, payload in frames:
                    out.write(payload)
        finally:
            await stream.close()
    return int(await shim.exec_wait(exec_id))


def kill_probe(pid: int) -> None:
    """SIGKILL a probe that took too long (its host pid, as the shim reported it)."""
    if pid <= 0:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _entry(start_ns: int, code: int, output: str) -> dict[str, Any]:
    return {"Start": rfc3339_nano(start_ns), "End": rfc3339_nano(now_ns()), "ExitCode": code, "Output": output}


# -- all monitors of the daemon ---------------------------------------------------------------------
class HealthMonitors:
    """At most one HealthMonitor per container; the hooks ContainerService calls."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service
        self.monitors: dict[str, HealthMonitor] = {}

    def start(self, c: Container, *, reset: bool = True) -> None:
        """After a start/restart/restore (reset=True: Status "starting") or an unpause (reset=False)."""
        self.stop(c)
        if probe_command(c.config) is None:
            return
        if reset:
            reset_health(c)
        elif not isinstance(c.state.get("Health"), dict):
            return
        monitor = HealthMonitor(self.service, c)
        monitor.start()
        if monitor.active:
            self.monitors[c.id] = monitor

    def stop(self, c: Container) -> None:
        """On exit, pause, removal: no more probes; the last status stays."""
        monitor = self.monitors.pop(c.id, None)
        if monitor is not None:
            monitor.stop()

    def stop_all(self) -> None:
        for monitor in self.monitors.values():
            monitor.stop()
        self.monitors.clear()
