"""kill -9 of dockyard-runtime at any moment of create: `delete` afterwards leaves nothing behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.privileged


def _cgroup_dirs(name: str) -> list[str]:
    found = []
    for controller in ("memory", "pids", "cpu", "devices", "freezer", "blkio", "cpuset"):
        path = f"/sys/fs/cgroup/{controller}/{name}"
        if os.path.exists(path):
            found.append(path)
    return found


def _processes_with(marker: str, cid: str) -> list[int]:
    """Processes of this container: after exec they carry the marker in their environment,
    before it (an init still in the runtime's code) the container id on their command line."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    env = f.read()
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
            except OSError:
                continue
            if marker.encode() in env or cid.encode() in cmdline:
                pids.append(int(name))
    return pids


def test_killed_during_create_hook_then_delete(ours):
    marker = f"DOCKYARD_CRASH_{os.getpid()}_{random.randrange(1 << 30)}"
    cg = f"dockyard-crash-{random.randrange(1 << 30)}"

    def edit(spec):
        spec["linux"]["cgroupsPath"] = f"/{cg}"
        spec["process"]["env"].append(marker)
        spec["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]}

    cid = ours.new_id()
    proc = subprocess.Popen(ours.argv + ["create", "--bundle", ours.bundle(["sleep", "60"], edit=edit), cid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _cgroup_dirs(cg) or ours("state", cid).returncode != 0:
        assert time.monotonic() < deadline, "create never got as far as the cgroup"
        time.sleep(0.02)
    assert ours.state(cid)["status"] == "creating"
    os.killpg(proc.pid, signal.SIGKILL)  # the runtime and its hook
    proc.wait()
    assert ours.state(cid)["status"] == "stopped"
    r = ours("delete", cid)
    assert r.returncode == 0, r.stderr
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(ours.root, cid))
    assert _cgroup_dirs(cg) == []
    assert _processes_with(marker, cid) == []


@pytest.mark.parametrize("delay_ms", [0, 2, 5, 10, 15, 20, 30, 45, 60, 120])
def test_killed_at_random_points_then_force_delete(ours, delay_ms):
    marker = f"DOCKYARD_CRASH_{os.getpid()}_{random.randrange(1 << 30)}"
    cg = f"dockyard-crash-{random.randrange(1 << 30)}"

    def edit(spec):
        spec["linux"]["cgroupsPath"] = f"/{cg}"
        spec["process"]["env"].append(marker)

    cid = ours.new_id()
    bundle = ours.bundle(["sleep", "60"], edit=edit)
    proc = subprocess.Popen(ours.argv + ["create", "--bundle", bundle, cid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    proc.kill()
    proc.wait()
    # Whatever state it was killed in: a forced delete (what a supervisor does) cleans everything.
    r = ours("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while (_processes_with(marker, cid) or _cgroup_dirs(cg)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(os.path.join(ours.root, cid))
    assert _processes_with(marker, cid) == []
    assert _cgroup_dirs(cg) == []
