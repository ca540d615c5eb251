"""The cgroup drivers against the real kernel (root only).

Each test creates its cgroup under a unique top dir
(``/dockyard-test-<pid>-<random>``), puts a real child process in it, and
removes everything it created in a ``finally``, killing the child first,
even when an assertion fails.

v1 runs where /sys/fs/cgroup holds v1 hierarchies. The v2 test needs a
cgroup2 hierarchy with controllers (a pure v2 host, or a hybrid host whose
/sys/fs/cgroup/unified offers some); the eBPF device filter test only needs
a cgroup2 hierarchy, since device programs work without any controller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dockyard.runtime import cgroups

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

ROOT = "/sys/fs/cgroup"
MB = 1 << 20

# A child that joins nothing by itself: it waits for a line on stdin, then
# reports whether it can open /dev/null and /dev/zero (read, and read-write).
PROBE = r"""
import os, sys
sys.stdin.readline()
out = []
for dev, flags in (("/dev/null", os.O_RDONLY), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_RDWR)):
    try:
        os.close(os.open(dev, flags))
        out.append("ok")
    except OSError as e:
        out.append(str(e.errno))
print(" ".join(out), flush=True)
"""


def _top() -> str:
    return f"/dockyard-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _v2_root() -> str | None:
    for root in (ROOT, ROOT + "/unified"):
        if cgroups.detect(root) == 2:
            return root
    return None


def _cleanup(mgr: cgroups.Manager | None, dirs: list[str], children: list[subprocess.Popen]) -> None:
    """Kill what is in the cgroups, then remove them and their top dirs."""
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
    for d in dirs:
        try:
            for pid in _read(os.path.join(d, "cgroup.procs")).split():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    if mgr is not None:
        try:
            mgr.thaw()
        except Exception:
            pass
        try:
            mgr.destroy()
        except Exception:
            time.sleep(0.2)
            mgr.destroy()
    for d in sorted(set(dirs), key=len, reverse=True):
        for path in (d, os.path.dirname(d)):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                pass
    leftovers = [d for d in dirs if os.path.exists(d) or os.path.exists(os.path.dirname(d))]
    assert not leftovers, f"cgroups left behind: {leftovers}"


def _probe(child: subprocess.Popen) -> list[str]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"\n")
    child.stdin.flush()
    return child.stdout.readline().decode().split()


@pytest.mark.skipif(cgroups.detect() != 1 or not os.path.isdir(ROOT + "/devices"), reason="no cgroup v1 hierarchies")
def test_v1_real_lifecycle() -> None:
    path = _top() + "/ctr"
    mgr = cgroups.new_manager(path, "ctr")
    assert mgr.version == 1
    dirs = sorted(set(mgr.to_state()["paths"].values()))
    child = subprocess.Popen(["sleep", "30"])
    try:
        swap = os.path.exists(ROOT + "/memory/memory.memsw.limit_in_bytes")
        memory = {"limit": 64 * MB, **({"swap": 128 * MB} if swap else {})}
        res = cgroups.create_resources(
            {
                "resources": {
                    "devices": [{"allow": False, "access": "rwm"}],
                    "memory": memory,
                    "pids": {"limit": 32},
                    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                }
            }
        )
        mgr.apply(child.pid, res)
        mgr.set(res)
        assert mgr.exists()
        own = _read(f"/proc/{child.pid}/cgroup")
        for line in own.splitlines():
            if line.split(":")[1] in ("memory", "pids", "devices", "cpu", "freezer", "cpuset"):
                assert line.endswith(path), line
        assert _read(f"{ROOT}/memory{path}/memory.limit_in_bytes") == str(64 * MB)
        if swap:
            assert _read(f"{ROOT}/memory{path}/memory.memsw.limit_in_bytes") == str(128 * MB)
        assert _read(f"{ROOT}/pids{path}/pids.max") == "32"
        cpu_dir = os.path.dirname(mgr.to_state()["paths"]["cpu"])
        assert _read(f"{cpu_dir}/ctr/cpu.shares") == "512"
        assert _read(f"{cpu_dir}/ctr/cpu.cfs_quota_us") == "50000"
        assert _read(f"{ROOT}/cpuset{path}/cpuset.cpus") == "0"
        listing = _read(f"{ROOT}/devices{path}/devices.list").splitlines()
        assert "c 1:3 rwm" in listing and "a *:* rwm" not in listing
        assert mgr.pids() == [child.pid]

        # lowering memory+swap: memory first, then swap
        mgr.set({"memory": {"limit": 32 * MB, **({"swap": 48 * MB} if swap else {})}})
        assert _read(f"{ROOT}/memory{path}/memory.limit_in_bytes") == str(32 * MB)
        if swap:
            assert _read(f"{ROOT}/memory{path}/memory.memsw.limit_in_bytes") == str(48 * MB)
        mgr.set({"memory": {"limit": -1}, "pids": {"limit": -1}})
        assert _read(f"{ROOT}/pids{path}/pids.max") == "max"

        mgr.freeze()
        assert _read(f"{ROOT}/freezer{path}/freezer.state") == "FROZEN"
        assert mgr.frozen()
        state = _read(f"/proc/{child.pid}/stat").split()[2]
        assert state in ("D", "T", "S"), state
        mgr.thaw()
        assert _read(f"{ROOT}/freezer{path}/freezer.state") == "THAWED"
        assert not mgr.frozen()

        st = mgr.stats()
        assert st["pids"] == {"current": 1}
        assert st["cpuset"]["cpus"] == [0]
        assert st["memory"]["usage"]["limit"] > 64 * MB  # unlimited again
        assert st["memory"]["raw"]["hierarchical_memory_limit"] > 64 * MB
        assert st["cpu"]["usage"]["percpu"]  # one entry per CPU, even if all 0
        assert mgr.oom_kill_count() == 0

        child.kill()
        child.wait()
        mgr.destroy()
        assert not mgr.exists()
    finally:
        _cleanup(mgr, dirs, [child])


@pytest.mark.skipif(cgroups.detect() != 1 or not os.path.isdir(ROOT + "/devices"), reason="no cgroup v1 hierarchies")
def test_v1_real_device_rules() -> None:
    path = _top() + "/ctr"
    mgr = cgroups.new_manager(path, "ctr")
    dirs = sorted(set(mgr.to_state()["paths"].values()))
    child = subprocess.Popen([sys.executable, "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
        mgr.apply(child.pid)
        mgr.set({"devices": rules})
        assert _probe(child) == ["ok", "1", "1"]  # EPERM for /dev/zero
    finally:
        _cleanup(mgr, dirs, [child])


@pytest.mark.skipif(_v2_root() is None, reason="no cgroup2 hierarchy")
def test_v2_real_device_filter() -> None:
    root = _v2_root()
    assert root is not None
    path = _top() + "/ctr"
    mgr = cgroups.new_manager(path, "ctr", root=root, version=2)
    full = root + path
    children = [
        subprocess.Popen([sys.executable, "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)
    ]
    try:
        # an allow-list: only /dev/null
        mgr.apply(children[0].pid)
        allow_null = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
        mgr.set({"devices": allow_null})
        assert _probe(children[0]) == ["ok", "1", "1"]

        # replaced by a deny-list: writing /dev/zero is denied, reading not
        mgr.apply(children[1].pid)
        deny_zero_w = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]
        mgr.set({"devices": deny_zero_w})
        assert _probe(children[1]) == ["ok", "ok", "1"]

        from dockyard.kernel import bpf

        fd = os.open(full, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(bpf.attached_device_programs(fd)) == 1
        finally:
            os.close(fd)
    finally:
        _cleanup(mgr, [full], children)


def _v2_controllers() -> list[str]:
    root = _v2_root()
    if root is None:
        return []
    return _read(root + "/cgroup.controllers").split()


@pytest.mark.skipif(not _v2_controllers(), reason="no cgroup2 hierarchy with controllers available")
def test_v2_real_lifecycle() -> None:
    root = _v2_root()
    assert root is not None
    available = _v2_controllers()
    path = _top() + "/ctr"
    full = root + path
    mgr = cgroups.new_manager(path, "ctr", root=root, version=2)
    child = subprocess.Popen(["sleep", "30"])
    try:
        res: dict = {}
        if "pids" in available:
            res["pids"] = {"limit": 16}
        if "memory" in available:
            res["memory"] = {"limit": 64 * MB}
        if "cpu" in available:
            res["cpu"] = {"shares": 1024, "quota": 20000}
        if "hugetlb" in available and os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
            res["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * MB}]
        mgr.apply(child.pid, res)
        mgr.set(res)
        assert _read(f"/proc/{child.pid}/cgroup").splitlines()[-1] == "0::" + path
        enabled = _read(os.path.dirname(full) + "/cgroup.subtree_control").split()
        assert set(available) <= set(enabled)
        if "pids" in res:
            assert _read(full + "/pids.max") == "16"
        if "memory" in res:
            assert _read(full + "/memory.max") == str(64 * MB)
        if "cpu" in res:
            assert _read(full + "/cpu.weight") == "39"
            assert _read(full + "/cpu.max") == "20000 100000"
        if "hugepageLimits" in res:
            assert _read(full + "/hugetlb.2MB.max") == str(4 * MB)
        assert mgr.pids() == [child.pid]

        mgr.freeze()
        assert "frozen 1" in _read(full + "/cgroup.events")
        assert mgr.frozen()
        mgr.thaw()
        assert "frozen 0" in _read(full + "/cgroup.events")
        assert not mgr.frozen()

        st = mgr.stats()
        assert st["pids"]["current"] == 1
        if "hugepageLimits" in res:
            assert "2MB" in st["hugetlb"]

        child.kill()
        child.wait()
        mgr.destroy()
        assert not mgr.exists()
    finally:
        _cleanup(mgr, [full], [child])
