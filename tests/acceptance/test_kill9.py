"""dockyardd only: SIGKILL the daemon (containers and shims live on), restart it, and find everything intact.

Each case has its own DockyardDaemon (the session one is left alone); its stop()
fails the case with LeakError if processes, mounts or cgroups outlive it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support import hostclean
from tests.acceptance.conftest import BrokenEngine
from tests.support.dockyardd import DaemonStartError, DockyardDaemon

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]
TICKER = "while true; do echo tick; sleep 0.2; done"


@pytest.fixture
def daemon(tmp_path) -> Iterator[DockyardDaemon | BrokenEngine]:
    """A fresh dockyardd with busybox; if it will not start, the case fails (conftest's call hook)."""
    hostclean.sweep_stale()
    d = DockyardDaemon(log_dir=str(tmp_path / "logs"))
    try:
        d.start()
        d.load_busybox()
    except (DaemonStartError, OSError, subprocess.TimeoutExpired) as e:
        tail = "" if isinstance(e, DaemonStartError) else f"\n--- log tail:\n{d.log_tail()}"
        reason = f"dockyardd unusable: {e}{tail}"
        d.stop()
        yield BrokenEngine(reason)
        return
    yield d
    d.stop()


def ok(d: DockyardDaemon, *args: str, timeout: float = 30.0) -> str:
    r = d.docker(*args, timeout=timeout)
    assert r.rc == 0, f"docker {' '.join(args)}: {r}\n--- dockyardd log:\n{d.log_tail()}"
    return r.stdout


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def traces(d: DockyardDaemon, cid: str) -> list[str]:
    """Mounts and cgroups that still name the container ``cid``."""
    found = [f"cgroup {c}" for c in hostclean.cgroup_dirs(d.name) if cid in c]
    points = {m for m, _, _ in hostclean.mountinfo()}
    if d.pid is not None:
        points |= {m for m, _, _ in hostclean.mountinfo(d.pid)}
    found += [f"mount {m}" for m in points if cid in m or cid[:12] in m]
    return found


def read_lines(proc: subprocess.Popen, want: int, timeout: float) -> list[str]:
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= want:
                return

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    t.join(timeout)
    proc.kill()
    proc.wait()
    return lines


def test_kill9_dockyardd_restart_keeps_containers(daemon):
    d = daemon
    ticker = ok(d, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", TICKER).strip()
    r = d.docker("run", "--name", "seven", "busybox", "sh", "-c", "echo bye; exit 7")
    assert r.rc == 7, r
    seven = ok(d, "inspect", "-f", "{{.Id}}", "seven").strip()
    pid = int(ok(d, "inspect", "-f", "{{.State.Pid}}", "ticker"))
    assert alive(pid)
    d.kill9()
    time.sleep(0.5)
    assert alive(pid), "the container died with the daemon"
    d.restart()
    assert ok(d, "ps", "--format", "{{.Names}} {{.Status}}").split()[:2] == ["ticker", "Up"]
    assert ok(d, "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "ticker").split() == ["true", str(pid)]
    assert ok(d, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "seven").strip() == "exited 7"
    assert ok(d, "logs", "seven") == "bye\n"
    assert ok(d, "ps", "-a", "--filter", "name=seven", "--format", "{{.Status}}").startswith("Exited (7) ")
    since = str(int(time.time()))
    follow = subprocess.Popen(d.cli_argv("logs", "-f", "--since", since, "ticker"), env=d.cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert read_lines(follow, 3, 10) == ["tick\n"] * 3
    attach = subprocess.Popen(d.cli_argv("attach", "--no-stdin", "--sig-proxy=false", "ticker"), env=d.cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert read_lines(attach, 3, 10) == ["tick\n"] * 3
    ok(d, "stop", "-t", "1", "ticker")
    assert not alive(pid)
    assert ok(d, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ticker").strip() == "exited 137"
    ok(d, "rm", "ticker", "seven")
    assert ok(d, "ps", "-aq") == ""
    time.sleep(0.3)
    assert traces(d, ticker) + traces(d, seven) == []


def test_kill9_dockyardd_during_run_bursts(daemon):
    d = daemon
    procs: list[subprocess.Popen] = []
    for i in range(8):  # staggered, so the kill lands while some runs are still in flight
        procs.append(subprocess.Popen(d.cli_argv("run", "-d", "--name", f"burst{i}", "busybox", "sleep", "60"),
                                      env=d.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    d.kill9()  # right after the first run -d returned
    results = [(p.communicate(timeout=30), p.returncode) for p in procs]
    d.restart()
    started = {f"burst{i}": out.strip() for i, ((out, _), rc) in enumerate(results) if rc == 0}
    print(f"run -d burst: {len(started)} of {len(procs)} reported started before/while the daemon died")
    listed = dict(line.split() for line in ok(d, "ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}").splitlines())
    for name, cid in started.items():
        assert listed.get(name) == cid, f"{name} ({cid}) was reported started but is gone: {listed}"
    for name in listed:
        state = ok(d, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Pid}}", name).split()
        if state[1] == "true":
            assert state[0] == "running" and alive(int(state[2])), (name, state)
        else:
            assert state[0] in ("created", "exited") and state[2] == "0", (name, state)
    if listed:
        ok(d, "rm", "-f", *listed, timeout=60)
    assert ok(d, "ps", "-aq") == ""
    for i in range(len(procs)):  # a run that never made it must not leave its name reserved
        if f"burst{i}" not in listed:
            ok(d, "run", "--rm", "--name", f"burst{i}", "busybox", "true")
    time.sleep(0.3)
    leftovers = [t for cid in listed.values() for t in traces(d, cid)]
    assert leftovers == []
    assert ok(d, "run", "--rm", "busybox", "echo", "after") == "after\n"
    assert os.path.exists(d.socket_path)
