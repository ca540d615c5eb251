"""Healthchecks end to end: a real dockyardd, the docker CLI, busybox (root only).

Needs the ContainerService hooks of containers/health.py (HealthMonitors start/stop) to be wired
into service.py/restore.py. DOCKYARDD_BINARY may name another dockyardd to test.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.privileged,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")]


@pytest.fixture(scope="module")
def daemon() -> Iterator[DockyardDaemon]:
    d = DockyardDaemon(binary=os.environ.get("DOCKYARDD_BINARY") or None)
    d.start()
    try:
        d.load_busybox()
        yield d
    finally:
        d.docker("rm", "-f", *_all_ids(d), timeout=60)
        d.stop()


def _all_ids(d: DockyardDaemon) -> list[str]:
    return d.docker("ps", "-aq").stdout.split() or ["none"]


def _run(d: DockyardDaemon, *args: str) -> str:
    r = d.docker("run", "-d", *args, "busybox", "sleep", "300")
    assert r.rc == 0, str(r)
    return r.stdout.strip()


def _health(d: DockyardDaemon, cid: str) -> dict[str, Any]:
    r = d.docker("inspect", "-f", "{{json .State.Health}}", cid)
    assert r.rc == 0, str(r)
    return dict(json.loads(r.stdout) or {})


def _wait_status(d: DockyardDaemon, cid: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    h = _health(d, cid)
    while h.get("Status") != status:
        assert time.monotonic() < deadline, f"health never became {status}: {h}\n{d.log_tail()}"
        time.sleep(0.3)
        h = _health(d, cid)
    return h


def test_passing_check_becomes_healthy_and_survives_stop(daemon: DockyardDaemon) -> None:
    since = str(int(time.time()) - 1)
    cid = _run(daemon, "--health-cmd", "echo alive", "--health-interval", "1s")
    assert _health(daemon, cid)["Status"] in ("starting", "healthy")
    h = _wait_status(daemon, cid, "healthy")
    assert h["FailingStreak"] == 0
    last = h["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == "alive\n" and last["Start"] <= last["End"]
    ps = daemon.docker("ps", "--filter", f"id={cid}", "--filter", "health=healthy", "--format", "{{.Status}}")
    assert ps.stdout.strip().endswith("(healthy)"), str(ps)
    ev = daemon.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                       "--filter", f"container={cid}", "--format", "{{.Action}}")
    assert "health_status: healthy" in ev.stdout.splitlines(), str(ev)
    assert daemon.docker("stop", "-t", "1", cid).rc == 0
    assert _health(daemon, cid)["Status"] == "healthy"          # dockerd keeps the last status
    assert daemon.docker("start", cid).rc == 0
    assert _health(daemon, cid)["Status"] in ("starting", "healthy")
    _wait_status(daemon, cid, "healthy")


def test_failing_check_becomes_unhealthy_after_retries(daemon: DockyardDaemon) -> None:
    cid = _run(daemon, "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "2")
    h = _wait_status(daemon, cid, "unhealthy")
    assert h["FailingStreak"] >= 2
    assert all(e["ExitCode"] == 1 for e in h["Log"])
    ps = daemon.docker("ps", "--filter", f"id={cid}", "--format", "{{.Status}}")
    assert ps.stdout.strip().endswith("(unhealthy)"), str(ps)


def test_slow_check_times_out(daemon: DockyardDaemon) -> None:
    cid = _run(daemon, "--health-cmd", "sleep 30", "--health-interval", "1s", "--health-timeout", "1s",
               "--health-retries", "1")
    h = _wait_status(daemon, cid, "unhealthy", timeout=30)
    last = h["Log"][-1]
    assert last["ExitCode"] == -1 and last["Output"] == "Health check exceeded timeout (1s)"
    deadline = time.monotonic() + 15
    while len(_health(daemon, cid)["Log"]) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    top = daemon.docker("top", cid)
    probes = [line for line in top.stdout.splitlines() if line.rstrip().endswith("sleep 30")]
    assert len(probes) <= 1, str(top)                           # timed-out probes are killed, not piled up


def test_no_healthcheck_means_no_health(daemon: DockyardDaemon) -> None:
    cid = _run(daemon)
    assert _health(daemon, cid) == {}
    cid2 = _run(daemon, "--no-healthcheck")
    assert _health(daemon, cid2) == {}


def test_pause_stops_probes_and_unpause_resumes(daemon: DockyardDaemon) -> None:
    cid = _run(daemon, "--health-cmd", "true", "--health-interval", "1s")
    _wait_status(daemon, cid, "healthy")
    assert daemon.docker("pause", cid).rc == 0
    time.sleep(0.5)
    frozen = _health(daemon, cid)
    time.sleep(2.5)
    paused = _health(daemon, cid)
    assert paused["Status"] == "healthy" and paused["Log"] == frozen["Log"]   # no probe while paused
    assert daemon.docker("unpause", cid).rc == 0
    deadline = time.monotonic() + 10
    while _health(daemon, cid)["Log"][-1]["Start"] <= paused["Log"][-1]["Start"]:
        assert time.monotonic() < deadline, "no probe after unpause"
        time.sleep(0.3)
    assert _health(daemon, cid)["Status"] == "healthy"


def test_daemon_restart_reattaches_and_restarts_probes(daemon: DockyardDaemon) -> None:
    cid = _run(daemon, "--health-cmd", "true", "--health-interval", "1s")
    _wait_status(daemon, cid, "healthy")
    daemon.kill9()
    daemon.restart()
    assert _health(daemon, cid)["Status"] in ("starting", "healthy")
    _wait_status(daemon, cid, "healthy")
