"""Healthchecks (engine/daemon/containers/health.py) against a fake shim and a fake service."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dockyard.engine.daemon.containers import health
from dockyard.engine.daemon.containers.health import (HealthMonitor, HealthMonitors, LimitedBuffer, apply_result,
                                                      go_duration, probe_command, reset_health)
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.timefmt import NS_PER_S, now_ns, parse_rfc3339, rfc3339_nano
from dockyard.errors import Conflict, DockyardError

MS = 1_000_000


def asynctest(fn: Any) -> Any:
    """Run an async test on a fresh event loop (no pytest asyncio plugin here)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(data)) + data


class FakeStream:
    def __init__(self, data: bytes, until: asyncio.Future[Any] | None = None) -> None:
        self.data, self.until, self.closed = data, until, False

    async def read(self, n: int = 65536) -> bytes:
        if self.data:
            out, self.data = self.data[:5], self.data[5:]  # small chunks: frames split across reads
            return out
        if self.until is not None:
            await asyncio.shield(self.until)
        return b""

    async def close(self) -> None:
        self.closed = True


class FakeShim:
    """Each exec takes the next script entry: (exit code, stdout, stderr), "sleep" (a real process) or an error."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.processes: list[dict[str, Any]] = []
        self.codes: dict[str, asyncio.Future[int]] = {}
        self.sleepers: list[asyncio.subprocess.Process] = []

    async def exec(self, exec_id: str, process: dict[str, Any], *, detach: bool = False,
                   stdin: bool = False) -> tuple[int, FakeStream]:
        assert not detach and not stdin
        self.processes.append(process)
        step = self.script.pop(0) if self.script else (0, b"", b"")
        if isinstance(step, Exception):
            raise step
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.codes[exec_id] = fut
        if step == "sleep":
            proc = await asyncio.create_subprocess_exec("sleep", "30")
            self.sleepers.append(proc)

            async def reap() -> None:
                rc = await proc.wait()
                fut.set_result(128 - rc if rc < 0 else rc)
            asyncio.get_running_loop().create_task(reap())
            return proc.pid, FakeStream(b"", fut)
        code, out, err = step
        fut.set_result(code)
        return 4242, FakeStream((frame(1, out) if out else b"") + (frame(2, err) if err else b""))

    async def exec_wait(self, exec_id: str) -> int:
        return await asyncio.shield(self.codes[exec_id])


class FakeService:
    def __init__(self, tmp: Path, shim: FakeShim) -> None:
        self.daemon = SimpleNamespace(config=SimpleNamespace(exec_root=str(tmp / "exec")))
        self.store = SimpleNamespace(dir=lambda id: str(tmp / "containers" / id), save=self._save)
        self.saved: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, str]]] = []
        self._shim = shim

    def _save(self, c: Container) -> None:
        self.saved.append(copy.deepcopy(c.state["Health"]))

    def shim(self, c: Container) -> FakeShim:
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        return self._shim

    def emit(self, c: Container, action: str, **extra: str) -> None:
        self.events.append((action, extra))

    def health_events(self) -> list[str]:
        return [a for a, _ in self.events if a.startswith("health_status")]


def make_container(tmp: Path, healthcheck: dict[str, Any] | None, **config: Any) -> Container:
    cid = "c" * 64
    bundle = tmp / "exec" / cid
    bundle.mkdir(parents=True)
    (tmp / "containers" / cid / "rootfs").mkdir(parents=True)
    spec = {"process": {"args": ["sleep", "1000"], "env": ["PATH=/bin", "HOSTNAME=x"], "cwd": "/",
                        "user": {"uid": 0, "gid": 0}, "capabilities": {"bounding": ["CAP_CHOWN"]}}}
    (bundle / "config.json").write_text(json.dumps(spec))
    cfg: dict[str, Any] = {"Hostname": "x", "Env": ["PATH=/bin", "FOO=bar"], "WorkingDir": "", "User": "", **config}
    if healthcheck is not None:
        cfg["Healthcheck"] = healthcheck
    c = Container(id=cid, name="/t", created=rfc3339_nano(now_ns()), image_id="sha256:" + "1" * 64,
                  image_ref="busybox", config=cfg, host_config={})
    c.set_running(1, rfc3339_nano(now_ns()))
    return c


async def wait_for(pred: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- pure parts ---------------------------------------------------------------------------------------
def test_probe_command_kinds() -> None:
    assert probe_command({"Healthcheck": {"Test": ["CMD", "curl", "-f", "x"]}}) == ["curl", "-f", "x"]
    assert probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"]}}) == ["/bin/sh", "-c", "exit 1"]
    assert probe_command({"Shell": ["/bin/ash", "-e", "-c"], "Healthcheck": {"Test": ["CMD-SHELL", "x"]}}) == \
        ["/bin/ash", "-e", "-c", "x"]
    none: list[dict[str, Any]] = [{}, {"Healthcheck": None}, {"Healthcheck": {"Test": []}},
                                  {"Healthcheck": {"Test": ["NONE"]}}, {"Healthcheck": {"Test": ["BOGUS", "x"]}}]
    for cfg in none:
        assert probe_command(cfg) is None


@pytest.mark.parametrize("ns,text", [(0, "0s"), (30 * NS_PER_S, "30s"), (90 * NS_PER_S, "1m30s"),
                                     (500 * MS, "500ms"), (1500 * MS, "1.5s"), (3600 * NS_PER_S, "1h0m0s"),
                                     (1_000, "1µs"), (2_500_000, "2.5ms"), (7, "7ns")])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_limited_buffer_truncates_at_4096_with_dots() -> None:
    b = LimitedBuffer()
    b.write(b"a" * 4000)
    b.write(b"b" * 200)
    b.write(b"c")
    assert b.text() == "a" * 4000 + "b" * 96 + "..."
    small = LimitedBuffer()
    small.write(b"ok\n\xff")
    assert small.text() == "ok\n\ufffd"


def entry(code: int) -> dict[str, Any]:
    return {"Start": "", "End": "", "ExitCode": code, "Output": ""}


def test_apply_result_retries_log_and_recovery(tmp_path: Path) -> None:
    c = make_container(tmp_path, {"Test": ["CMD", "x"], "Retries": 2})
    reset_health(c)
    start = parse_rfc3339(c.state["StartedAt"])
    assert apply_result(c, entry(1), start) is None
    assert c.state["Health"]["FailingStreak"] == 1 and c.state["Health"]["Status"] == "starting"
    assert apply_result(c, entry(1), start) == "unhealthy"
    assert apply_result(c, entry(7), start) is None
    assert c.state["Health"]["FailingStreak"] == 3
    assert apply_result(c, entry(0), start) == "healthy"
    assert c.state["Health"]["FailingStreak"] == 0
    for _ in range(3):
        apply_result(c, entry(0), start)
    assert [e["ExitCode"] for e in c.state["Health"]["Log"]] == [7, 0, 0, 0, 0]


def test_apply_result_default_retries_is_three(tmp_path: Path) -> None:
    c = make_container(tmp_path, {"Test": ["CMD", "x"]})
    reset_health(c)
    start = parse_rfc3339(c.state["StartedAt"])
    assert [apply_result(c, entry(1), start) for _ in range(3)] == [None, None, "unhealthy"]


def test_start_period_ignores_failures_only_while_starting(tmp_path: Path) -> None:
    c = make_container(tmp_path, {"Test": ["CMD", "x"], "Retries": 1, "StartPeriod": 60 * NS_PER_S})
    reset_health(c)
    started = parse_rfc3339(c.state["StartedAt"])
    assert apply_result(c, entry(1), started + NS_PER_S) is None
    assert c.state["Health"] == {**c.state["Health"], "Status": "starting", "FailingStreak": 0}
    assert apply_result(c, entry(0), started + 2 * NS_PER_S) == "healthy"
    assert apply_result(c, entry(1), started + 3 * NS_PER_S) == "unhealthy"   # after a success it counts
    c2 = make_container(tmp_path / "2", {"Test": ["CMD", "x"], "Retries": 1, "StartPeriod": NS_PER_S})
    reset_health(c2)
    late = parse_rfc3339(c2.state["StartedAt"]) + 2 * NS_PER_S
    assert apply_result(c2, entry(1), late) == "unhealthy"                    # after the period it counts


def test_reset_keeps_log_and_clears_streak(tmp_path: Path) -> None:
    c = make_container(tmp_path, {"Test": ["CMD", "x"]})
    c.state["Health"] = {"Status": "unhealthy", "FailingStreak": 4, "Log": [entry(1)]}
    reset_health(c)
    assert c.state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": [entry(1)]}


# -- the monitor with a fake shim ----------------------------------------------------------------------
@asynctest
async def test_healthy_probe_runs_shell_exec_and_records(tmp_path: Path) -> None:
    shim = FakeShim([(0, b"out\n", b"err\n")])
    c = make_container(tmp_path, {"Test": ["CMD-SHELL", "echo hi"], "Interval": 20 * MS},
                       User="nobody:nogroup", WorkingDir="/tmp")
    etc = tmp_path / "containers" / c.id / "rootfs" / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    svc = FakeService(tmp_path, shim)
    monitors = HealthMonitors(svc)  # type: ignore[arg-type]
    monitors.start(c)
    assert c.state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    await wait_for(lambda: c.state["Health"]["Status"] == "healthy")
    monitors.stop(c)
    log = c.state["Health"]["Log"][0]
    assert log["ExitCode"] == 0 and log["Output"] == "out\nerr\n"
    assert parse_rfc3339(log["Start"]) <= parse_rfc3339(log["End"])
    p = shim.processes[0]
    assert p["args"] == ["/bin/sh", "-c", "echo hi"] and p["cwd"] == "/tmp"
    assert p["user"]["uid"] == 65534 and p["user"]["gid"] == 65534
    assert "FOO=bar" in p["env"] and "terminal" not in p and p["capabilities"] == {"bounding": ["CAP_CHOWN"]}
    assert svc.health_events() == ["health_status: healthy"]
    assert svc.saved and svc.saved[-1]["Status"] == "healthy"
    actions = [a for a, _ in svc.events]
    assert actions[:3] == ["exec_create: /bin/sh -c echo hi", "exec_start: /bin/sh -c echo hi", "exec_die"]


@asynctest
async def test_failing_probe_turns_unhealthy_after_retries(tmp_path: Path) -> None:
    shim = FakeShim([(1, b"no\n", b"")] * 10)
    c = make_container(tmp_path, {"Test": ["CMD", "false"], "Interval": 10 * MS, "Retries": 2})
    svc = FakeService(tmp_path, shim)
    m = HealthMonitor(svc, c)  # type: ignore[arg-type]
    reset_health(c)
    m.start()
    await wait_for(lambda: c.state["Health"]["FailingStreak"] >= 3)
    m.stop()
    assert c.state["Health"]["Status"] == "unhealthy"
    assert svc.health_events() == ["health_status: unhealthy"]
    assert len(svc.saved) == 1                                   # saved on the change only
    assert c.state["Health"]["Log"][-1] | {"Start": "", "End": ""} == \
        {"Start": "", "End": "", "ExitCode": 1, "Output": "no\n"}
    assert shim.processes[0]["args"] == ["false"]


@asynctest
async def test_timeout_kills_probe_and_records_minus_one(tmp_path: Path) -> None:
    shim = FakeShim(["sleep", (0, b"", b"")])
    c = make_container(tmp_path, {"Test": ["CMD", "sleep", "30"], "Interval": 10 * MS, "Timeout": 200 * MS,
                                  "Retries": 1})
    svc = FakeService(tmp_path, shim)
    monitors = HealthMonitors(svc)  # type: ignore[arg-type]
    monitors.start(c)
    await wait_for(lambda: c.state["Health"]["Log"])
    first = c.state["Health"]["Log"][0]
    assert first["ExitCode"] == -1 and first["Output"] == "Health check exceeded timeout (200ms)"
    assert shim.sleepers[0].returncode == -9                    # the probe was killed, and reaped
    assert c.state["Health"]["Status"] == "unhealthy"
    elapsed = (parse_rfc3339(first["End"]) - parse_rfc3339(first["Start"])) / NS_PER_S
    assert 0.2 <= elapsed < 5
    await wait_for(lambda: c.state["Health"]["Status"] == "healthy")
    monitors.stop_all()
    assert svc.health_events() == ["health_status: unhealthy", "health_status: healthy"]


@asynctest
async def test_stop_while_probing_kills_probe_and_drops_result(tmp_path: Path) -> None:
    shim = FakeShim(["sleep"])
    c = make_container(tmp_path, {"Test": ["CMD", "sleep"], "Interval": 10 * MS, "Retries": 1})
    svc = FakeService(tmp_path, shim)
    monitors = HealthMonitors(svc)  # type: ignore[arg-type]
    monitors.start(c)
    await wait_for(lambda: bool(shim.sleepers))
    monitors.stop(c)
    assert await asyncio.wait_for(shim.sleepers[0].wait(), 5) == -9
    await asyncio.sleep(0.1)
    assert c.state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert len(shim.processes) == 1


@asynctest
async def test_exec_error_is_a_failed_check(tmp_path: Path) -> None:
    shim = FakeShim([DockyardError('exec: "nope": executable file not found in $PATH')])
    c = make_container(tmp_path, {"Test": ["CMD", "nope"], "Interval": 10 * MS, "Retries": 1})
    svc = FakeService(tmp_path, shim)
    m = HealthMonitor(svc, c)  # type: ignore[arg-type]
    reset_health(c)
    m.start()
    await wait_for(lambda: c.state["Health"]["Status"] == "unhealthy")
    m.stop()
    first = c.state["Health"]["Log"][0]
    assert first["ExitCode"] == -1 and "executable file not found" in first["Output"]


@asynctest
async def test_no_monitor_without_check_or_when_not_running(tmp_path: Path) -> None:
    svc = FakeService(tmp_path, FakeShim([]))
    monitors = HealthMonitors(svc)  # type: ignore[arg-type]
    none = make_container(tmp_path, {"Test": ["NONE"]})
    monitors.start(none)
    assert "Health" not in none.state and not monitors.monitors
    plain = make_container(tmp_path / "p", None)
    monitors.start(plain)
    assert "Health" not in plain.state and not monitors.monitors
    paused = make_container(tmp_path / "q", {"Test": ["CMD", "true"]})
    paused.set_paused(True)
    monitors.start(paused)
    assert not monitors.monitors


@asynctest
async def test_unpause_resumes_without_reset_and_exit_keeps_status(tmp_path: Path) -> None:
    shim = FakeShim([(0, b"", b"")] * 10)
    c = make_container(tmp_path, {"Test": ["CMD", "true"], "Interval": 10 * MS})
    svc = FakeService(tmp_path, shim)
    monitors = HealthMonitors(svc)  # type: ignore[arg-type]
    monitors.start(c)
    await wait_for(lambda: c.state["Health"]["Status"] == "healthy")
    c.set_paused(True)
    monitors.stop(c)
    c.set_paused(False)
    monitors.start(c, reset=False)
    assert c.state["Health"]["Status"] == "healthy"
    assert c.id in monitors.monitors
    c.set_exited(0, rfc3339_nano(now_ns()))
    monitors.stop(c)
    await asyncio.sleep(0.05)
    assert c.state["Health"]["Status"] == "healthy" and not monitors.monitors
    assert svc.health_events() == ["health_status: healthy"]


@asynctest
async def test_result_dropped_if_container_exited_meanwhile(tmp_path: Path) -> None:
    shim = FakeShim([(1, b"", b"")])
    c = make_container(tmp_path, {"Test": ["CMD", "x"], "Retries": 1})
    svc = FakeService(tmp_path, shim)
    m = HealthMonitor(svc, c)  # type: ignore[arg-type]
    reset_health(c)
    start = now_ns()
    e = await m.probe(start)
    c.set_exited(0, rfc3339_nano(now_ns()))
    m._record(e, start)
    assert c.state["Health"]["Log"] == [] and not svc.health_events()


def test_kill_probe_ignores_gone_and_zero_pids() -> None:
    health.kill_probe(0)
    health.kill_probe(2 ** 22 + 12345)  # beyond pid_max: nothing to kill, no error
    assert os.getpid() > 0
