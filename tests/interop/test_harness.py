"""The harness itself: a private dockerd leaves nothing behind, even after a crash.

Starts its own DockerDaemon (not the session one), leaves a running and a
paused container, SIGKILLs dockerd (no graceful shutdown), then stop() must
remove every process, mount and cgroup, and the host's default Docker paths
must be untouched.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

HOST_PATHS = ("/run/containerd", "/run/docker", "/run/docker.sock", "/run/mount", "/var/lib/docker",
              "/etc/docker/key.json", "/opt/containerd")


def _shim_cmdlines() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "containerd-shim-runc-v2" in cmd:
            found.append(cmd)
    return found


def test_teardown_after_dockerd_crash_leaves_nothing(tmp_path) -> None:
    existed = {p: os.path.lexists(p) for p in HOST_PATHS}
    daemon = DockerDaemon(log_dir=str(tmp_path))
    try:
        daemon.start()
        daemon.load_busybox()
        names = ("running", "paused")
        for name in names:
            r = daemon.docker("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
            assert r.rc == 0, str(r)
        assert daemon.docker("pause", "paused").rc == 0
        # Our containerd, not a system one: every shim talks to the socket in our directory.
        sock = daemon.path("containerd", "containerd.sock")
        ours = [c for c in _shim_cmdlines() if daemon.base in c]
        assert len(ours) == 2 and all(f"-address {sock}" in c for c in ours), ours
        # Mounts (overlay2, shm, netns) live in the daemon's private mount namespace only.
        assert hostclean.mounts_under(daemon.base) == []
        assert len(daemon.container_cgroups(daemon.docker("inspect", "-f", "{{.Id}}", "running").stdout.strip())) > 0
        os.kill(daemon._procs["dockerd"].pid, signal.SIGKILL)
    finally:
        daemon.stop()  # raises LeakError if anything is left
    assert not os.path.exists(daemon.base)
    assert hostclean.cgroup_dirs(daemon.name) == []
    assert hostclean.find_processes(daemon.name, needle=daemon.base) == set()
    assert {p: os.path.lexists(p) for p in HOST_PATHS} == existed
