"""StatsSampler on a real process in a real cgroup (root only; v1 or v2, whichever the host has).

The child gets its own cgroup under a unique top dir with a 64 MiB memory
limit and a pids limit, burns a little CPU and holds some memory; the
sampler must find the cgroup from /proc/<pid>/cgroup and report it. Every
created cgroup is removed in a ``finally``, the child killed first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from dockyard.engine.daemon import stats
from dockyard.runtime import cgroups

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

MB = 1 << 20
CHILD = """
import sys, time
sys.stdin.readline()
x = b"x" * (8 << 20)
t = time.time()
while time.time() - t < 0.3:
    pass
print("ok", flush=True)
time.sleep(30)
"""


def _usable() -> bool:
    return cgroups.detect() == 2 or os.path.isdir("/sys/fs/cgroup/devices")


@pytest.mark.skipif(not _usable(), reason="no usable cgroup hierarchy")
def test_real_container_stats() -> None:
    top = f"/dockyard-test-stats-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mgr = cgroups.new_manager(top + "/ctr", "ctr")
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        res = cgroups.create_resources({"resources": {"memory": {"limit": 64 * MB}, "pids": {"limit": 32}}})
        mgr.apply(child.pid, res)
        mgr.set(res)
        sampler = stats.StatsSampler(child.pid, "real", "id1")
        first = sampler.sample()
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(b"\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"ok\n"
        second = sampler.sample()
        assert first["read"] != "0001-01-01T00:00:00Z"
        assert second["pids_stats"] == {"current": 1, "limit": 32}
        mem = second["memory_stats"]
        assert mem["limit"] == 64 * MB
        assert 8 * MB <= mem["usage"] <= 64 * MB
        used = second["cpu_stats"]["cpu_usage"]["total_usage"]
        before = second["precpu_stats"]["cpu_usage"]["total_usage"]
        assert before == first["cpu_stats"]["cpu_usage"]["total_usage"]
        assert used - before >= 200_000_000  # the 0.3 s busy loop
        assert second["cpu_stats"]["system_cpu_usage"] > second["precpu_stats"]["system_cpu_usage"]
        if mgr.version == 1:
            assert sum(second["cpu_stats"]["cpu_usage"]["percpu_usage"]) == used
            assert "total_rss" in mem["stats"]
        else:
            assert "anon" in mem["stats"]
        assert "networks" in second or "networks" not in first  # host netns: eth0 etc., lo skipped
        assert "lo" not in second.get("networks", {})
        child.kill()
        child.wait()
        gone = sampler.sample()
        assert gone["read"] == "0001-01-01T00:00:00Z" and gone["memory_stats"] == {}
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for _ in range(20):
            try:
                mgr.destroy()
                break
            except Exception:
                time.sleep(0.1)
        state = mgr.to_state()
        dirs = list(state.get("paths", {}).values()) or [state.get("path", "")]
        for d in dirs:
            try:
                os.rmdir(os.path.dirname(d))
            except OSError:
                pass
        assert not any(os.path.exists(d) for d in dirs if d)
