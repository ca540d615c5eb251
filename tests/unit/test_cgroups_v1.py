"""cgroup v1 driver against a fake /sys/fs/cgroup tree (no root needed).

The fake host has one dir per hierarchy, files pre-created with the values
the kernel would show, a fake mountinfo and /proc/self/cgroup. Every write
goes through ``files.write_raw``, which the fixture wraps to record
``(path relative to the root, value)`` and to imitate the few kernel
behaviours the driver reads back (devices.list, clamping, EBUSY...).
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound, Unavailable
from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import hugetlb, paths
from dockyard.runtime.cgroups.v1 import V1Manager
from tests.support.cgroupfs import RecordingCgroupfs

HIERARCHIES = {
    # dir name -> super options in mountinfo
    "cpu,cpuacct": "rw,cpu,cpuacct",
    "cpuset": "rw,cpuset",
    "memory": "rw,memory",
    "devices": "rw,devices",
    "freezer": "rw,freezer",
    "blkio": "rw,blkio",
    "pids": "rw,pids",
    "hugetlb": "rw,hugetlb",
    "net_cls,net_prio": "rw,net_cls,net_prio",
    "perf_event": "rw,perf_event",
    "systemd": "rw,xattr,name=systemd",
}

UNLIMITED = "9223372036854771712\n"

KERNEL_FILES = {
    "cpu": {
        "cpu.shares": "1024\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.cfs_quota_us": "-1\n",
        "cpu.cfs_burst_us": "0\n",
        "cpu.rt_period_us": "1000000\n",
        "cpu.rt_runtime_us": "0\n",
        "cpu.idle": "0\n",
        "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
    },
    "cpuacct": {
        "cpuacct.stat": "user 0\nsystem 0\n",
        "cpuacct.usage": "0\n",
        "cpuacct.usage_percpu": "0 0 \n",
        "cpuacct.usage_all": "cpu user system\n0 0 0\n1 0 0\n",
    },
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.cpu_exclusive": "0\n"},
    "memory": {
        "memory.limit_in_bytes": UNLIMITED,
        "memory.memsw.limit_in_bytes": UNLIMITED,
        "memory.soft_limit_in_bytes": UNLIMITED,
        "memory.swappiness": "60\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "memory.usage_in_bytes": "0\n",
        "memory.max_usage_in_bytes": "0\n",
        "memory.failcnt": "0\n",
        "memory.stat": "cache 0\nrss 0\n",
    },
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED\n", "freezer.self_freezing": "0\n"},
    "blkio": {
        "blkio.weight": "500\n",
        "blkio.weight_device": "",
        "blkio.leaf_weight": "500\n",
        "blkio.leaf_weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "hugetlb": {
        "hugetlb.2MB.limit_in_bytes": UNLIMITED,
        "hugetlb.2MB.usage_in_bytes": "0\n",
        "hugetlb.2MB.max_usage_in_bytes": "0\n",
        "hugetlb.2MB.failcnt": "0\n",
    },
    "net_cls": {"net_cls.classid": "0\n"},
    "net_prio": {"net_prio.ifpriomap": "lo 0\n"},
    "perf_event": {},
    "systemd": {},
}


class FakeHost(RecordingCgroupfs):
    def __init__(self, tmp: str, monkeypatch: pytest.MonkeyPatch, own: dict[str, str] | None = None) -> None:
        own = own or {}
        super().__init__(tmp, monkeypatch, "".join(
            f"{i}:{sub}:{own.get(sub, '/')}\n"
            for i, sub in enumerate(
                ["cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb"]
                + ["net_cls,net_prio", "perf_event", "name=systemd"],
                start=1,
            )
        ) + f"0::{own.get('', '/')}\n")
        lines = [f"30 1 0:26 / {self.root} rw - tmpfs tmpfs rw,mode=755"]
        for i, (name, opts) in enumerate(HIERARCHIES.items()):
            self.mkcg(os.path.join(self.root, name), top=True)
            lines.append(f"{40 + i} 30 0:{40 + i} / {self.root}/{name} rw,relatime - cgroup cgroup {opts}")
        os.makedirs(os.path.join(self.root, "unified"))
        with open(os.path.join(self.root, "unified", "cgroup.controllers"), "w"):
            pass
        lines.append(f"60 30 0:60 / {self.root}/unified rw - cgroup2 cgroup2 rw")
        mountinfo = os.path.join(tmp, "mountinfo")
        with open(mountinfo, "w") as f:
            f.write("\n".join(lines) + "\n")
        monkeypatch.setattr(paths, "MOUNTINFO", mountinfo)

    def after_write(self, dirpath: str, name: str, data: str) -> None:
        if name in ("devices.allow", "devices.deny"):
            self._devices(dirpath, name == "devices.allow", data)

    def mkcg(self, path: str, top: bool = False) -> None:
        """Create a cgroup dir with the files the kernel would put there."""
        os.makedirs(path, exist_ok=True)
        hierarchy = os.path.relpath(path, self.root).split("/")[0]
        content = {"cgroup.procs": ""}
        for sub in hierarchy.split(","):
            content.update(KERNEL_FILES.get(sub, {}))
        if hierarchy == "cpuset" and top:
            content.update({"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
        for name, text in content.items():
            with open(os.path.join(path, name), "w") as f:
                f.write(text)

    def container(self, rel: str, hierarchies: list[str] | None = None) -> None:
        """Pre-create ``rel`` (and parents) in every hierarchy, as mkdir would."""
        for name in hierarchies or list(HIERARCHIES):
            cur = os.path.join(self.root, name)
            for part in rel.strip("/").split("/"):
                cur = os.path.join(cur, part)
                if not os.path.isdir(cur):
                    self.mkcg(cur)
        cur = os.path.join(self.root, "unified")
        for part in rel.strip("/").split("/"):
            cur = os.path.join(cur, part)
            os.makedirs(cur, exist_ok=True)
            open(os.path.join(cur, "cgroup.procs"), "a").close()

    def _devices(self, dirpath: str, allow: bool, rule: str) -> None:
        path = os.path.join(dirpath, "devices.list")
        with open(path) as f:
            lines = f.read().split("\n")[:-1]
        if rule.startswith("a "):
            lines = ["a *:* rwm"] if allow else []
        elif "a *:* rwm" not in lines:
            key = rule.rsplit(" ", 1)[0]
            if allow:
                lines.append(rule)
            else:
                lines = [ln for ln in lines if ln.rsplit(" ", 1)[0] != key]
        with open(path, "w") as f:
            f.write("".join(ln + "\n" for ln in lines))

    def read(self, rel: str) -> str:
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def put(self, rel: str, text: str) -> None:
        with open(os.path.join(self.root, rel), "w") as f:
            f.write(text)

    def written(self, name: str) -> list[tuple[str, str]]:
        return [(p, v) for p, v in self.writes if p.endswith("/" + name)]


@pytest.fixture
def host(tmp_path, monkeypatch) -> FakeHost:
    return FakeHost(str(tmp_path), monkeypatch)


def manager(host: FakeHost, path: str | None = "/ctr", cid: str = "ctr") -> V1Manager:
    m = cgroups.new_manager(path, cid, root=host.root, version=1)
    assert isinstance(m, V1Manager)
    return m


# ---- paths -------------------------------------------------------------


def test_clean_cgroups_path() -> None:
    assert paths.clean_cgroups_path("") == ""
    assert paths.clean_cgroups_path("/a/../b/") == "/b"
    assert paths.clean_cgroups_path("../../etc") == "etc"
    assert paths.clean_cgroups_path("a/./b//c") == "a/b/c"
    assert paths.clean_cgroups_path("/../..") == "/"
    assert paths.clean_cgroups_path("//x") == "/x"


def test_absolute_path_is_under_each_hierarchy(host: FakeHost) -> None:
    m = manager(host, "/docker/abc")
    r = host.root
    assert m.paths["memory"] == f"{r}/memory/docker/abc"
    assert m.paths["cpu"] == m.paths["cpuacct"] == f"{r}/cpu,cpuacct/docker/abc"
    assert m.paths["net_cls"] == m.paths["net_prio"] == f"{r}/net_cls,net_prio/docker/abc"
    assert m.paths["name=systemd"] == f"{r}/systemd/docker/abc"
    assert m.paths[""] == f"{r}/unified/docker/abc"
    assert "rdma" not in m.paths  # not mounted: left out
    assert m.mounts["cpuset"] == f"{r}/cpuset"


def test_relative_path_is_under_own_cgroup_per_hierarchy(tmp_path, monkeypatch) -> None:
    host = FakeHost(str(tmp_path), monkeypatch, own={"memory": "/mem/own", "pids": "/user.slice", "": "/u/own"})
    m = manager(host, "a/b")
    r = host.root
    assert m.paths["memory"] == f"{r}/memory/mem/own/a/b"
    assert m.paths["pids"] == f"{r}/pids/user.slice/a/b"
    assert m.paths["devices"] == f"{r}/devices/a/b"
    # runc's quirk: the hybrid cgroup2 hierarchy starts at its root
    assert m.paths[""] == f"{r}/unified/a/b"


def test_empty_path_uses_container_id_relative(tmp_path, monkeypatch) -> None:
    host = FakeHost(str(tmp_path), monkeypatch, own={"memory": "/mem/own"})
    m = manager(host, None, "c1")
    assert m.paths["memory"] == f"{host.root}/memory/mem/own/c1"
    assert m.paths["devices"] == f"{host.root}/devices/c1"
    assert manager(host, "", "c2").paths["pids"] == f"{host.root}/pids/c2"


def test_relative_path_nested_mount_root(tmp_path, monkeypatch) -> None:
    host = FakeHost(str(tmp_path), monkeypatch, own={"memory": "/docker/outer"})
    # inside a container: the memory hierarchy is mounted from /docker/outer
    with open(paths.MOUNTINFO) as f:
        text = f.read().replace(f" / {host.root}/memory ", f" /docker/outer {host.root}/memory ")
    with open(paths.MOUNTINFO, "w") as f:
        f.write(text)
    paths.reset()
    assert manager(host, "x").paths["memory"] == f"{host.root}/memory/x"


def test_dotdot_cannot_escape(host: FakeHost) -> None:
    assert manager(host, "/../../x").paths["pids"] == f"{host.root}/pids/x"
    assert manager(host, "../../y").paths["pids"] == f"{host.root}/pids/y"


def test_systemd_path_unsupported(host: FakeHost) -> None:
    with pytest.raises(Unavailable, match="systemd"):
        manager(host, "system.slice:docker:abc")


def test_devices_hierarchy_required(host: FakeHost) -> None:
    with open(paths.MOUNTINFO) as f:
        text = "".join(ln for ln in f if "rw,devices" not in ln)
    with open(paths.MOUNTINFO, "w") as f:
        f.write(text)
    paths.reset()
    with pytest.raises(Unavailable, match="devices"):
        manager(host)


def test_detect_and_version_choice(host: FakeHost) -> None:
    assert cgroups.detect(host.root) == 1
    assert cgroups.detect(os.path.join(host.root, "unified")) == 2
    assert cgroups.new_manager("/x", "x", root=host.root).version == 1
    with pytest.raises(Unavailable, match="not a cgroup2 mount"):
        cgroups.new_manager("/x", "x", root=host.root, version=2)


# ---- apply ---------------------------------------------------------------


def test_apply_joins_every_hierarchy_once(host: FakeHost) -> None:
    host.container("/ctr")
    m = manager(host)
    m.apply(4242)
    procs = host.written("cgroup.procs")
    assert sorted(p for p, _ in procs) == sorted(
        f"{d}/ctr/cgroup.procs" for d in list(HIERARCHIES) + ["unified"]
    )
    assert all(v == "4242" for _, v in procs)
    # all dirs prepared before the first move (one RCU grace period)
    first_proc = next(i for i, (p, _) in enumerate(host.writes) if p.endswith("cgroup.procs"))
    assert all(p.endswith("cgroup.procs") for p, _ in host.writes[first_proc:])
    assert host.read("cpu,cpuacct/ctr/cgroup.procs") == "4242"


def test_apply_creates_dirs(host: FakeHost) -> None:
    # dirs that do not exist yet are created (a tmpfs has no kernel files,
    # so only check the mkdir here)
    m = manager(host, "/fresh")
    with pytest.raises(Exception):
        m.apply(1)
    assert os.path.isdir(f"{host.root}/cpuset/fresh")


def test_apply_cpuset_copies_parent_values(host: FakeHost) -> None:
    host.container("/a/b")
    manager(host, "/a/b").apply(7)
    cpuset = [(p, v) for p, v in host.writes if p.startswith("cpuset/")]
    assert cpuset == [
        ("cpuset/a/cpuset.cpus", "0-3\n"),
        ("cpuset/a/cpuset.mems", "0\n"),
        ("cpuset/a/b/cpuset.cpus", "0-3\n"),
        ("cpuset/a/b/cpuset.mems", "0\n"),
        ("cpuset/a/b/cgroup.procs", "7"),
    ]


def test_apply_cpuset_uses_requested_values(host: FakeHost) -> None:
    host.container("/ctr")
    manager(host).apply(7, {"cpu": {"cpus": "1-2"}})
    cpuset = [(p, v) for p, v in host.writes if p.startswith("cpuset/") and not p.endswith("procs")]
    assert cpuset == [("cpuset/ctr/cpuset.cpus", "1-2"), ("cpuset/ctr/cpuset.mems", "0\n")]


def test_apply_sets_realtime_before_joining(host: FakeHost) -> None:
    host.container("/ctr")
    manager(host).apply(7, {"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 10000}})
    names = [p for p, _ in host.writes if p.startswith("cpu,cpuacct/")]
    assert names == ["cpu,cpuacct/ctr/cpu.rt_period_us", "cpu,cpuacct/ctr/cpu.rt_runtime_us", "cpu,cpuacct/ctr/cgroup.procs"]


def test_apply_ignores_failure_to_join_named_hierarchies(host: FakeHost) -> None:
    host.container("/ctr")
    os.remove(f"{host.root}/systemd/ctr/cgroup.procs")
    manager(host).apply(7)  # no error
    assert host.read("pids/ctr/cgroup.procs") == "7"


def test_enter_writes_existing_dirs_only(host: FakeHost) -> None:
    host.container("/ctr", ["pids", "devices"])
    manager(host).enter(99)
    assert sorted(p for p, _ in host.writes) == [
        "devices/ctr/cgroup.procs",
        "pids/ctr/cgroup.procs",
        "unified/ctr/cgroup.procs",
    ]


# ---- set: memory -----------------------------------------------------------


@pytest.fixture
def ctr(host: FakeHost) -> V1Manager:
    host.container("/ctr")
    return manager(host)


MB = 1 << 20


def test_memory_limit_only(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"memory": {"limit": 100 * MB}})
    assert host.writes == [("memory/ctr/memory.limit_in_bytes", str(100 * MB))]


def test_memory_raise_writes_swap_first(host: FakeHost, ctr: V1Manager) -> None:
    host.put("memory/ctr/memory.limit_in_bytes", f"{50 * MB}\n")
    ctr.set({"memory": {"limit": 100 * MB, "swap": 200 * MB}})
    assert host.writes == [
        ("memory/ctr/memory.memsw.limit_in_bytes", str(200 * MB)),
        ("memory/ctr/memory.limit_in_bytes", str(100 * MB)),
    ]


def test_memory_lower_writes_memory_first(host: FakeHost, ctr: V1Manager) -> None:
    host.put("memory/ctr/memory.limit_in_bytes", f"{500 * MB}\n")
    ctr.set({"memory": {"limit": 100 * MB, "swap": 200 * MB}})
    assert host.writes == [
        ("memory/ctr/memory.limit_in_bytes", str(100 * MB)),
        ("memory/ctr/memory.memsw.limit_in_bytes", str(200 * MB)),
    ]


def test_memory_unlimited_makes_swap_unlimited(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"memory": {"limit": -1}})
    assert host.writes == [
        ("memory/ctr/memory.memsw.limit_in_bytes", "-1"),
        ("memory/ctr/memory.limit_in_bytes", "-1"),
    ]


def test_memory_unlimited_without_swap_accounting(host: FakeHost, ctr: V1Manager) -> None:
    os.remove(f"{host.root}/memory/ctr/memory.memsw.limit_in_bytes")
    ctr.set({"memory": {"limit": -1}})
    assert host.writes == [("memory/ctr/memory.limit_in_bytes", "-1")]


def test_memory_swap_without_swap_accounting_fails(host: FakeHost, ctr: V1Manager) -> None:
    os.remove(f"{host.root}/memory/ctr/memory.memsw.limit_in_bytes")
    with pytest.raises(Unavailable, match="memory.memsw.limit_in_bytes"):
        ctr.set({"memory": {"limit": 100 * MB, "swap": 200 * MB}})


def test_memory_other_settings(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"memory": {"reservation": 10 * MB, "disableOOMKiller": True, "swappiness": 0, "kernel": 5, "kernelTCP": 5}})
    assert host.writes == [
        ("memory/ctr/memory.soft_limit_in_bytes", str(10 * MB)),
        ("memory/ctr/memory.oom_control", "1"),
        ("memory/ctr/memory.swappiness", "0"),
    ]


def test_memory_swappiness_range(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"memory": {"swappiness": -1, "disableOOMKiller": False}})
    assert host.writes == []
    with pytest.raises(InvalidArgument, match="swappiness"):
        ctr.set({"memory": {"swappiness": 101}})


def test_memory_limit_below_usage(host: FakeHost, ctr: V1Manager) -> None:
    def busy(_d: str, _v: str) -> str:
        raise OSError(errno.EBUSY, "busy")

    host.hooks["memory.limit_in_bytes"] = busy
    host.put("memory/ctr/memory.usage_in_bytes", "5000\n")
    host.put("memory/ctr/memory.max_usage_in_bytes", "8000\n")
    with pytest.raises(InvalidArgument, match=r"unable to set memory limit to 4096 \(current usage: 5000, peak usage: 8000\)"):
        ctr.set({"memory": {"limit": 4096}})


def test_memory_bad_type(ctr: V1Manager) -> None:
    with pytest.raises(InvalidArgument, match="memory.limit"):
        ctr.set({"memory": {"limit": "100m"}})


# ---- set: cpu, cpuset, pids ------------------------------------------------


def test_cpu_settings(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 1000, "idle": 0}})
    assert host.writes == [
        ("cpu,cpuacct/ctr/cpu.shares", "512"),
        ("cpu,cpuacct/ctr/cpu.cfs_period_us", "200000"),
        ("cpu,cpuacct/ctr/cpu.cfs_burst_us", "1000"),
        ("cpu,cpuacct/ctr/cpu.cfs_quota_us", "50000"),
        ("cpu,cpuacct/ctr/cpu.idle", "0"),
    ]


def test_cpu_shares_clamped_by_kernel(host: FakeHost, ctr: V1Manager) -> None:
    host.hooks["cpu.shares"] = lambda _d, v: str(min(int(v), 262144))
    with pytest.raises(InvalidArgument, match="maximum allowed cpu-shares is 262144"):
        ctr.set({"cpu": {"shares": 500000}})


def test_cpu_period_retried_after_quota(host: FakeHost, ctr: V1Manager) -> None:
    calls = []

    def period(_d: str, v: str) -> str:
        calls.append(v)
        if len(calls) == 1:
            raise OSError(errno.EINVAL, "invalid")
        return v

    host.hooks["cpu.cfs_period_us"] = period
    ctr.set({"cpu": {"quota": 10000, "period": 20000}})
    assert [p.rsplit("/", 1)[1] for p, _ in host.writes] == ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_period_us"]


def test_cpu_period_einval_without_quota_fails(host: FakeHost, ctr: V1Manager) -> None:
    def period(_d: str, _v: str) -> str:
        raise OSError(errno.EINVAL, "invalid")

    host.hooks["cpu.cfs_period_us"] = period
    with pytest.raises(InvalidArgument, match="cpu.cfs_period_us"):
        ctr.set({"cpu": {"period": 20000}})


def test_cpu_burst_skipped_without_kernel_support(host: FakeHost, ctr: V1Manager) -> None:
    os.remove(f"{host.root}/cpu,cpuacct/ctr/cpu.cfs_burst_us")
    ctr.set({"cpu": {"burst": 5}})
    assert host.writes == []


def test_cpuset_and_rt(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"cpu": {"cpus": "0-1", "mems": "0", "realtimeRuntime": 950000}})
    assert host.writes == [
        ("cpuset/ctr/cpuset.cpus", "0-1"),
        ("cpuset/ctr/cpuset.mems", "0"),
        ("cpu,cpuacct/ctr/cpu.rt_runtime_us", "950000"),
    ]


@pytest.mark.parametrize("limit,expected", [(0, None), (-1, "max"), (-5, "max"), (100, "100")])
def test_pids_limit(host: FakeHost, ctr: V1Manager, limit: int, expected: str | None) -> None:
    ctr.set({"pids": {"limit": limit}})
    assert host.writes == ([] if expected is None else [("pids/ctr/pids.max", expected)])


# ---- set: devices ----------------------------------------------------------


def test_devices_default_spec(host: FakeHost, ctr: V1Manager) -> None:
    res = cgroups.create_resources({"resources": {"devices": [{"allow": False, "access": "rwm"}]}})
    ctr.set(res)
    assert host.writes == [
        ("devices/ctr/devices.deny", "a *:* rwm"),
        ("devices/ctr/devices.allow", "b *:* m"),
        ("devices/ctr/devices.allow", "c *:* m"),
        ("devices/ctr/devices.allow", "c 1:3 rwm"),
        ("devices/ctr/devices.allow", "c 1:5 rwm"),
        ("devices/ctr/devices.allow", "c 1:7 rwm"),
        ("devices/ctr/devices.allow", "c 1:8 rwm"),
        ("devices/ctr/devices.allow", "c 1:9 rwm"),
        ("devices/ctr/devices.allow", "c 5:0 rwm"),
        ("devices/ctr/devices.allow", "c 5:2 rwm"),
        ("devices/ctr/devices.allow", "c 10:200 rwm"),
        ("devices/ctr/devices.allow", "c 136:* rwm"),
    ]
    # the same rules again: nothing to do
    host.writes.clear()
    ctr.set(res)
    assert host.writes == []


def test_devices_without_deny_all_still_allow_list(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]})
    assert host.writes == [("devices/ctr/devices.deny", "a *:* rwm"), ("devices/ctr/devices.allow", "c 1:3 rw")]


def test_devices_update_removes_only_dropped_rules(host: FakeHost, ctr: V1Manager) -> None:
    host.put("devices/ctr/devices.list", "c 1:3 rwm\nc 1:5 rwm\n")
    ctr.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    assert host.writes == [("devices/ctr/devices.deny", "c 1:5 rwm")]


def test_devices_allow_all(host: FakeHost, ctr: V1Manager) -> None:
    host.put("devices/ctr/devices.list", "c 1:3 rwm\n")
    ctr.set({"devices": [{"allow": True, "access": "rwm"}]})
    assert host.writes == [("devices/ctr/devices.allow", "a *:* rwm")]


def test_devices_deny_list_mode(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"devices": [{"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "major": 8, "access": "w"}]})
    assert host.writes == [("devices/ctr/devices.allow", "a *:* rwm"), ("devices/ctr/devices.deny", "b 8:* w")]


def test_devices_cannot_punch_hole_in_wildcard(ctr: V1Manager) -> None:
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "access": "rwm"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"},
    ]
    with pytest.raises(InvalidArgument, match="punch a hole"):
        ctr.set({"devices": rules})


@pytest.mark.parametrize(
    "rule,match",
    [
        ({"allow": True, "type": "x", "access": "r"}, "invalid device type"),
        ({"allow": True, "type": "c"}, "cannot be empty"),
        ({"allow": True, "type": "c", "access": "rx"}, "invalid device access"),
        ({"allow": True, "type": "c", "major": "1", "access": "r"}, "major"),
    ],
)
def test_devices_invalid_rules(ctr: V1Manager, rule: dict, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        ctr.set({"devices": [rule]})


def test_devices_final_check(host: FakeHost, ctr: V1Manager) -> None:
    host.hooks["devices.allow"] = lambda _d, v: "c 9:9 r" if v.startswith("c ") else v
    with pytest.raises(Exception, match="does not match"):
        ctr.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})


def test_create_resources_adds_defaults_not_overridden() -> None:
    res = cgroups.create_resources(
        {"resources": {"pids": {"limit": 5}}, "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]}
    )
    assert res["pids"] == {"limit": 5}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} not in res["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"} in res["devices"]
    assert res["devices"][0] == {"allow": True, "type": "c", "access": "m"}
    assert len(cgroups.create_resources(None)["devices"]) == 11


# ---- set: blkio, hugetlb, network, rdma, unified ---------------------------


def test_blkio(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set(
        {
            "blockIO": {
                "weight": 300,
                "leafWeight": 200,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            }
        }
    )
    assert host.writes == [
        ("blkio/ctr/blkio.weight", "300"),
        ("blkio/ctr/blkio.leaf_weight", "200"),
        ("blkio/ctr/blkio.weight_device", "8:0 100"),
        ("blkio/ctr/blkio.leaf_weight_device", "8:0 50"),
        ("blkio/ctr/blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio/ctr/blkio.throttle.write_iops_device", "8:16 100"),
    ]


def test_blkio_bfq_fallback_and_missing(host: FakeHost, ctr: V1Manager) -> None:
    os.remove(f"{host.root}/blkio/ctr/blkio.weight")
    host.put("blkio/ctr/blkio.bfq.weight", "100\n")
    ctr.set({"blockIO": {"weight": 300}})
    assert host.writes == [("blkio/ctr/blkio.bfq.weight", "300")]
    os.remove(f"{host.root}/blkio/ctr/blkio.bfq.weight")
    with pytest.raises(Unavailable, match="blkio.bfq.weight"):
        ctr.set({"blockIO": {"weight": 300}})


def test_hugetlb_network(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set(
        {
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}],
            "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
        }
    )
    assert host.writes == [
        ("hugetlb/ctr/hugetlb.2MB.limit_in_bytes", str(4 * MB)),
        ("net_cls,net_prio/ctr/net_cls.classid", str(0x100001)),
        ("net_cls,net_prio/ctr/net_prio.ifpriomap", "eth0 5"),
    ]


def test_limit_on_missing_hierarchy(host: FakeHost, ctr: V1Manager) -> None:
    ctr.set({"rdma": {}})  # nothing asked: fine
    with pytest.raises(Unavailable, match="cannot set rdma limit"):
        ctr.set({"rdma": {"mlx4_0": {"hcaHandles": 2}}})


def test_unified_refused_on_v1(ctr: V1Manager) -> None:
    ctr.set({"unified": {}})
    with pytest.raises(InvalidArgument, match="unified"):
        ctr.set({"unified": {"memory.high": "1000"}})


# ---- freezer ---------------------------------------------------------------


def test_freeze_thaw(host: FakeHost, ctr: V1Manager) -> None:
    seen = []

    def state(_d: str, v: str) -> str:
        seen.append(v)
        return "FREEZING\n" if v == "FROZEN" and len(seen) < 3 else v + "\n"

    host.hooks["freezer.state"] = state
    ctr.freeze()
    assert seen == ["FROZEN", "FROZEN", "FROZEN"]
    host.put("freezer/ctr/freezer.self_freezing", "1\n")
    assert ctr.frozen() is True
    host.writes.clear()
    ctr.thaw()
    assert host.writes == [("freezer/ctr/freezer.state", "THAWED")]
    assert ctr.frozen() is False


def test_frozen_by_ancestor_is_not_frozen(host: FakeHost, ctr: V1Manager) -> None:
    host.put("freezer/ctr/freezer.state", "FROZEN\n")
    host.put("freezer/ctr/freezer.self_freezing", "0\n")
    assert ctr.frozen() is False


def test_freeze_failure_thaws(host: FakeHost, ctr: V1Manager) -> None:
    host.hooks["freezer.state"] = lambda _d, v: "WEIRD\n" if v == "FROZEN" else v
    with pytest.raises(Exception, match="unexpected freezer state"):
        ctr.freeze()
    assert host.writes[-1] == ("freezer/ctr/freezer.state", "THAWED")


# ---- observing -------------------------------------------------------------


def test_pids_recursive(host: FakeHost, ctr: V1Manager) -> None:
    host.put("devices/ctr/cgroup.procs", "10\n11\n")
    host.mkcg(f"{host.root}/devices/ctr/sub")
    host.put("devices/ctr/sub/cgroup.procs", "12\n")
    assert sorted(ctr.pids()) == [10, 11, 12]


def test_pids_of_missing_cgroup(host: FakeHost) -> None:
    with pytest.raises(NotFound):
        manager(host, "/nope").pids()


def test_stats(host: FakeHost, ctr: V1Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hugetlb, "_sizes", ["2MB"])
    host.put("hugetlb/ctr/hugetlb.2MB.usage_in_bytes", "2097152\n")
    host.put("hugetlb/ctr/hugetlb.2MB.failcnt", "1\n")
    host.put("memory/ctr/memory.stat", "cache 4096\nrss 8192\ntotal_rss 8192\n")
    host.put("memory/ctr/memory.usage_in_bytes", "12288\n")
    host.put("memory/ctr/memory.max_usage_in_bytes", "20480\n")
    host.put("memory/ctr/memory.limit_in_bytes", "1048576\n")
    host.put("memory/ctr/memory.memsw.usage_in_bytes", "12288\n")
    host.put("memory/ctr/memory.memsw.max_usage_in_bytes", "20480\n")
    host.put("memory/ctr/memory.memsw.failcnt", "2\n")
    host.put("cpu,cpuacct/ctr/cpuacct.stat", "user 3\nsystem 2\n")
    host.put("cpu,cpuacct/ctr/cpuacct.usage", "55000000\n")
    host.put("cpu,cpuacct/ctr/cpuacct.usage_percpu", "50000000 5000000 \n")
    host.put("cpu,cpuacct/ctr/cpuacct.usage_all", "cpu user system\n0 40000000 10000000\n1 5000000 0\n")
    host.put("cpu,cpuacct/ctr/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\n")
    host.put("cpuset/ctr/cpuset.cpus", "0-2,5\n")
    host.put("cpuset/ctr/cpuset.mems", "0\n")
    host.put("pids/ctr/pids.current", "3\n")
    host.put("blkio/ctr/blkio.throttle.io_serviced_recursive", "8:0 Read 4\n8:0 Write 1\nTotal 5\n")
    host.put("blkio/ctr/blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n")
    st = ctr.stats()
    assert st["cpu"] == {
        "usage": {
            "total": 55000000,
            "percpu": [50000000, 5000000],
            "percpu_kernel": [10000000, 0],
            "percpu_user": [40000000, 5000000],
            "kernel": 20000000,
            "user": 30000000,
        },
        "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 3000},
    }
    assert st["cpuset"]["cpus"] == [0, 1, 2, 5] and st["cpuset"]["mems"] == [0]
    assert st["memory"]["cache"] == 4096
    assert st["memory"]["usage"] == {"limit": 1048576, "usage": 12288, "max": 20480, "failcnt": 0}
    assert st["memory"]["swap"] == {"limit": int(UNLIMITED), "usage": 12288, "max": 20480, "failcnt": 2}
    assert st["memory"]["kernel"] == {"limit": 0, "failcnt": 0}  # no kmem files
    assert st["memory"]["raw"] == {"cache": 4096, "rss": 8192, "total_rss": 8192}
    assert st["pids"] == {"current": 3}  # "max" is reported as no limit
    assert st["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "Write"}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 4}, {"major": 8, "op": "Write", "value": 1}],
    }
    assert st["hugetlb"] == {"2MB": {"usage": 2097152, "failcnt": 1}}
    assert st["intel_rdt"] == {} and st["network_interfaces"] is None
    json.dumps(st)


def test_oom_kill_count(host: FakeHost, ctr: V1Manager) -> None:
    assert ctr.oom_kill_count() == 0
    host.put("memory/ctr/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert ctr.oom_kill_count() == 3


def test_exists_destroy(host: FakeHost, ctr: V1Manager) -> None:
    assert ctr.exists()
    os.mkdir(f"{host.root}/pids/ctr/child")
    for p in set(ctr.paths.values()):  # a real rmdir ignores kernel files
        for name in os.listdir(p):
            if os.path.isfile(os.path.join(p, name)):
                os.remove(os.path.join(p, name))
    ctr.destroy()
    assert not ctr.exists()
    assert not os.path.exists(f"{host.root}/pids/ctr")
    assert os.path.isdir(f"{host.root}/pids")
    ctr.destroy()  # already gone: fine


def test_destroy_busy(host: FakeHost, ctr: V1Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    with pytest.raises(Conflict, match="failed to remove cgroup"):
        ctr.destroy()  # files inside: rmdir keeps failing


def test_state_roundtrip(ctr: V1Manager) -> None:
    state = json.loads(json.dumps(ctr.to_state()))
    again = cgroups.load_manager(state)
    assert isinstance(again, V1Manager)
    assert again.paths == ctr.paths and again.mounts == ctr.mounts and again.version == 1


def test_container_mounts(host: FakeHost, ctr: V1Manager) -> None:
    r = host.root
    mounts = ctr.container_mounts()
    assert mounts == [
        (f"{r}/cpu,cpuacct/ctr", "cpu,cpuacct"),
        (f"{r}/cpuset/ctr", "cpuset"),
        (f"{r}/memory/ctr", "memory"),
        (f"{r}/devices/ctr", "devices"),
        (f"{r}/freezer/ctr", "freezer"),
        (f"{r}/blkio/ctr", "blkio"),
        (f"{r}/pids/ctr", "pids"),
        (f"{r}/hugetlb/ctr", "hugetlb"),
        (f"{r}/net_cls,net_prio/ctr", "net_cls,net_prio"),
        (f"{r}/perf_event/ctr", "perf_event"),
        (f"{r}/systemd/ctr", "systemd"),
        ("symlink:cpu,cpuacct", "cpu"),
        ("symlink:cpu,cpuacct", "cpuacct"),
        ("symlink:net_cls,net_prio", "net_cls"),
        ("symlink:net_cls,net_prio", "net_prio"),
    ]
