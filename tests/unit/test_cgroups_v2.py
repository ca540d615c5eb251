"""cgroup v2 driver and the eBPF device filter, against a fake unified tree.

As in test_cgroups_v1: files pre-created as the kernel would, writes
recorded through ``files.write_raw`` (paths relative to the fake root),
the bpf(2) call replaced by a recorder.
"""

from __future__ import annotations

import json
import os

import pytest

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.kernel import bpf
from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import blkio, cpu, devicefilter, devices, hugetlb, memory
from dockyard.runtime.cgroups.v2 import V2Manager
from tests.support.cgroupfs import RecordingCgroupfs

CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma"

KERNEL_FILES = {
    "cgroup.procs": "",
    "cgroup.type": "domain\n",
    "cgroup.controllers": CONTROLLERS + "\n",
    "cgroup.subtree_control": "\n",
    "cgroup.freeze": "0\n",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "memory.max": "max\n",
    "memory.low": "0\n",
    "memory.swap.max": "max\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    "cpu.weight": "100\n",
    "cpu.max": "max 100000\n",
    "cpu.max.burst": "0\n",
    "cpu.idle": "0\n",
    "pids.max": "max\n",
    "io.weight": "default 100\n",
    "io.max": "",
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "hugetlb.2MB.max": "max\n",
    "rdma.max": "",
}


class FakeHost(RecordingCgroupfs):
    def __init__(self, tmp: str, monkeypatch: pytest.MonkeyPatch, own: str = "/user.slice/session-1.scope") -> None:
        super().__init__(tmp, monkeypatch, f"0::{own}\n")
        self.hooks["cgroup.freeze"] = self._freeze
        self.filters: list[tuple[str, bytes, str]] = []
        self.put("cgroup.controllers", CONTROLLERS + "\n")
        self.put("cgroup.subtree_control", "\n")
        self.put("cgroup.procs", "")

        def replace_device_filter(fd: int, code: bytes, license: str) -> None:
            self.filters.append((os.readlink(f"/proc/self/fd/{fd}"), code, license))

        monkeypatch.setattr(bpf, "replace_device_filter", replace_device_filter)

    def _freeze(self, dirpath: str, value: str) -> str:
        with open(os.path.join(dirpath, "cgroup.events"), "w") as f:
            f.write(f"populated 1\nfrozen {value}\n")
        return value + "\n"

    def container(self, rel: str) -> None:
        cur = self.root
        for part in rel.strip("/").split("/"):
            cur = os.path.join(cur, part)
            if not os.path.isdir(cur):
                os.mkdir(cur)
                for name, text in KERNEL_FILES.items():
                    with open(os.path.join(cur, name), "w") as f:
                        f.write(text)

    def read(self, rel: str) -> str:
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def put(self, rel: str, text: str) -> None:
        with open(os.path.join(self.root, rel), "w") as f:
            f.write(text)


@pytest.fixture
def host(tmp_path, monkeypatch) -> FakeHost:
    return FakeHost(str(tmp_path), monkeypatch)


@pytest.fixture
def ctr(host: FakeHost) -> V2Manager:
    host.container("/ctr")
    return manager(host)


def manager(host: FakeHost, path: str | None = "/ctr", cid: str = "ctr") -> V2Manager:
    m = cgroups.new_manager(path, cid, root=host.root)
    assert isinstance(m, V2Manager)
    return m


# ---- detection and paths --------------------------------------------------


def test_detect(host: FakeHost, tmp_path) -> None:
    assert cgroups.detect(host.root) == 2
    assert cgroups.detect(str(tmp_path)) == 1
    assert cgroups.detect(str(tmp_path / "missing")) == 1


def test_paths(host: FakeHost) -> None:
    assert manager(host, "/docker/abc").path == f"{host.root}/docker/abc"
    # relative: under the parent of the runtime's own cgroup
    assert manager(host, "a/b").path == f"{host.root}/user.slice/a/b"
    assert manager(host, None, "c1").path == f"{host.root}/user.slice/c1"
    assert manager(host, "../../x").path == f"{host.root}/user.slice/x"


def test_relative_path_from_root_cgroup(tmp_path, monkeypatch) -> None:
    host = FakeHost(str(tmp_path), monkeypatch, own="/")
    assert manager(host, "c1").path == f"{host.root}/c1"


def test_systemd_path_unsupported(host: FakeHost) -> None:
    with pytest.raises(Unavailable, match="slice:prefix:name"):
        manager(host, "user.slice:dockyard:c1")


# ---- apply -----------------------------------------------------------------


def test_apply_enables_controllers_down_the_path(host: FakeHost) -> None:
    host.container("/a/b/ctr")
    host.put("a/cgroup.subtree_control", "cpu memory\n")
    manager(host, "/a/b/ctr").apply(77)
    assert host.writes == [
        ("cgroup.subtree_control", "+cpuset +cpu +io +memory +hugetlb +pids +rdma"),
        ("a/cgroup.subtree_control", "+cpuset +io +hugetlb +pids +rdma"),
        ("a/b/cgroup.subtree_control", "+cpuset +cpu +io +memory +hugetlb +pids +rdma"),
        ("a/b/ctr/cgroup.procs", "77"),
    ]


def test_apply_skips_enabled_controllers(host: FakeHost) -> None:
    host.container("/ctr")
    host.put("cgroup.subtree_control", CONTROLLERS + "\n")
    manager(host).apply(77)
    assert host.writes == [("ctr/cgroup.procs", "77")]


def test_apply_enables_one_by_one_when_refused(host: FakeHost) -> None:
    host.container("/ctr")

    def subtree(_d: str, v: str) -> str:
        if v == "+rdma" or " " in v:
            raise OSError(22, "Invalid argument")
        return v

    host.hooks["cgroup.subtree_control"] = subtree
    manager(host).apply(77)
    attempts = [v for p, v in host.writes if p == "cgroup.subtree_control"]
    assert attempts == ["+cpuset +cpu +io +memory +hugetlb +pids +rdma", "+cpuset", "+cpu", "+io", "+memory", "+hugetlb", "+pids", "+rdma"]
    assert host.read("ctr/cgroup.procs") == "77"


def test_apply_threaded_parent(host: FakeHost) -> None:
    host.container("/t/ctr")
    host.put("t/cgroup.type", "threaded\n")
    with pytest.raises(InvalidArgument, match="threaded"):
        manager(host, "/t/ctr").apply(5, {"memory": {"limit": 1 << 20}})
    manager(host, "/t/ctr").apply(5, {"pids": {"limit": 10}})  # thread-aware: fine


def test_apply_domain_invalid_becomes_threaded(host: FakeHost) -> None:
    host.container("/t")
    host.put("t/cgroup.type", "domain invalid\n")
    manager(host, "/t").apply(5)
    assert ("t/cgroup.type", "threaded") in host.writes


def test_apply_removes_created_dirs_on_failure(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = os.mkdir

    def mkdir(path: str, mode: int = 0o777) -> None:
        if path.endswith("/ctr"):
            raise PermissionError(13, "Permission denied")
        real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(Unavailable, match="mkdir"):
        manager(host, "/new/ctr").apply(5)
    assert not os.path.exists(f"{host.root}/new")


def test_apply_outside_root(host: FakeHost) -> None:
    m = V2Manager("/elsewhere/ctr", host.root)
    with pytest.raises(InvalidArgument, match="not under"):
        m.apply(1)


# ---- set -------------------------------------------------------------------

MB = 1 << 20


@pytest.mark.parametrize(
    "mem,expected",
    [
        ({"limit": 100 * MB}, [("memory.max", str(100 * MB))]),
        ({"limit": 100 * MB, "swap": 300 * MB}, [("memory.swap.max", str(200 * MB)), ("memory.max", str(100 * MB))]),
        ({"limit": 100 * MB, "swap": 100 * MB}, [("memory.swap.max", "0"), ("memory.max", str(100 * MB))]),
        ({"limit": 100 * MB, "swap": -1}, [("memory.swap.max", "max"), ("memory.max", str(100 * MB))]),
        ({"limit": -1}, [("memory.swap.max", "max"), ("memory.max", "max")]),
        ({"reservation": 10 * MB}, [("memory.low", str(10 * MB))]),
        ({"swappiness": 10, "disableOOMKiller": True}, []),
    ],
)
def test_memory(host: FakeHost, ctr: V2Manager, mem: dict, expected: list) -> None:
    ctr.set({"memory": mem})
    assert host.writes == [("ctr/" + n, v) for n, v in expected]


@pytest.mark.parametrize(
    "mem,match",
    [
        ({"swap": 100 * MB}, "without memory limit"),
        ({"limit": 200 * MB, "swap": 100 * MB}, "should be >= memory limit"),
        ({"limit": -5, "swap": 100 * MB}, "invalid memory value"),
    ],
)
def test_memory_invalid_swap(ctr: V2Manager, mem: dict, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        ctr.set({"memory": mem})


def test_memory_without_swap_accounting(host: FakeHost, ctr: V2Manager) -> None:
    os.remove(f"{host.root}/ctr/memory.swap.max")
    ctr.set({"memory": {"limit": -1}})  # unlimited swap is already true
    assert host.writes[-1] == ("ctr/memory.max", "max")
    with pytest.raises(Unavailable, match="memory.swap.max"):
        ctr.set({"memory": {"limit": 100 * MB, "swap": 300 * MB}})


def test_memory_check_before_update(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/memory.current", f"{50 * MB}\n")
    with pytest.raises(InvalidArgument, match="rejecting memory limit"):
        ctr.set({"memory": {"limit": 40 * MB, "checkBeforeUpdate": True}})
    ctr.set({"memory": {"limit": 40 * MB}})  # no check asked


@pytest.mark.parametrize("shares,weight", [(0, 0), (2, 1), (1024, 39), (512, 20), (262144, 10000)])
def test_cpu_weight_conversion(shares: int, weight: int) -> None:
    assert cpu.shares_to_weight(shares) == weight


def test_cpu_weight_conversion_wraps_like_go() -> None:
    # runc computes in uint64: shares below 2 give a huge (refused) weight
    assert cpu.shares_to_weight(1) == 1 + ((2**64 - 1) * 9999 % 2**64) // 262142


@pytest.mark.parametrize(
    "cpu_res,expected",
    [
        ({"shares": 1024}, [("cpu.weight", "39")]),
        ({"quota": 50000}, [("cpu.max", "50000 100000")]),
        ({"quota": 50000, "period": 200000}, [("cpu.max", "50000 200000")]),
        ({"quota": -1, "period": 200000}, [("cpu.max", "max 200000")]),
        ({"period": 50000}, [("cpu.max", "max 50000")]),
        ({"idle": 1}, [("cpu.idle", "1")]),
        ({"burst": 1000, "quota": 5000}, [("cpu.max.burst", "1000"), ("cpu.max", "5000 100000")]),
        ({"realtimeRuntime": 5, "realtimePeriod": 10}, []),
        ({"cpus": "0-1", "mems": "0"}, [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]),
    ],
)
def test_cpu(host: FakeHost, ctr: V2Manager, cpu_res: dict, expected: list) -> None:
    ctr.set({"cpu": cpu_res})
    assert host.writes == [("ctr/" + n, v) for n, v in expected]


@pytest.mark.parametrize("limit,expected", [(0, []), (-1, [("pids.max", "max")]), (64, [("pids.max", "64")])])
def test_pids(host: FakeHost, ctr: V2Manager, limit: int, expected: list) -> None:
    ctr.set({"pids": {"limit": limit}})
    assert host.writes == [("ctr/" + n, v) for n, v in expected]


@pytest.mark.parametrize("weight,io", [(10, 1), (500, 4950), (1000, 10000)])
def test_io_weight_conversion(weight: int, io: int) -> None:
    assert blkio.weight_to_io(weight) == io


def test_io(host: FakeHost, ctr: V2Manager) -> None:
    ctr.set(
        {
            "blockIO": {
                "weight": 500,
                "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}],
            }
        }
    )
    assert host.writes == [
        ("ctr/io.weight", "4950"),
        ("ctr/io.max", "8:0 rbps=1000"),
        ("ctr/io.max", "8:0 wbps=2000"),
        ("ctr/io.max", "8:0 riops=30"),
        ("ctr/io.max", "8:0 wiops=40"),
    ]


def test_io_bfq(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/io.bfq.weight", "default 100\n")
    host.hooks["io.bfq.weight"] = lambda _d, v: "default 100\n" if " " in v else f"default {v}\n"
    ctr.set({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}]}})
    assert host.writes == [("ctr/io.bfq.weight", "500"), ("ctr/io.bfq.weight", "8:0 100\n")]


def test_io_bfq_old_kernel_no_device_weights(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/io.bfq.weight", "100\n")
    ctr.set({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 100}]}})
    assert host.writes == []


def test_hugetlb_rdma_unified(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/memory.high", "max\n")
    ctr.set(
        {
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "1048576"},
            "network": {"classID": 1},  # no v2 equivalent: ignored
        }
    )
    assert host.writes == [
        ("ctr/hugetlb.2MB.max", str(4 * MB)),
        ("ctr/rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("ctr/memory.high", "1048576"),
    ]


@pytest.mark.parametrize(
    "unified,exc,match",
    [
        ({"../x": "1"}, InvalidArgument, "no slashes"),
        ({"nodot": "1"}, InvalidArgument, "CONTROLLER.PARAMETER"),
        ({"misc.max": "1"}, Unavailable, "controller 'misc' not available"),
        ({"memory.nosuchfile": "1"}, Unavailable, "memory.nosuchfile"),
        ({"memory.high": 5}, InvalidArgument, "string"),
    ],
)
def test_unified_errors(ctr: V2Manager, unified: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        ctr.set({"unified": unified})


def test_limit_for_disabled_controller(host: FakeHost, ctr: V2Manager) -> None:
    os.remove(f"{host.root}/ctr/pids.max")
    with pytest.raises(Unavailable, match="pids.max"):
        ctr.set({"pids": {"limit": 5}})


# ---- devices: eBPF ---------------------------------------------------------


def test_devices_attach_program(host: FakeHost, ctr: V2Manager) -> None:
    res = cgroups.create_resources({"resources": {"devices": [{"allow": False, "access": "rwm"}]}})
    ctr.set(res)
    assert len(host.filters) == 1
    target, code, license = host.filters[0]
    assert target == f"{host.root}/ctr" and license == "Apache"
    rules = devices.parse_rules(res["devices"])
    assert code == devicefilter.encode(devicefilter.program(rules))


def test_devices_skipped_when_absent(host: FakeHost, ctr: V2Manager) -> None:
    ctr.set({"pids": {"limit": 3}})
    assert host.filters == []


def test_encode_instruction_layout() -> None:
    assert devicefilter.encode([(0x61, 2, 1, 4, 0)]) == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert devicefilter.encode([(0x55, 4, 0, 3, -1)]) == bytes([0x55, 0x04, 3, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    assert devicefilter.encode([(0x95, 0, 0, 0, 0)]) == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])


def _prog(rules: list[dict]) -> list:
    return devicefilter.program(devices.parse_rules(rules))


BLOCK, CHAR = devicefilter.DEV_BLOCK, devicefilter.DEV_CHAR
R, W, M = devicefilter.ACC_READ, devicefilter.ACC_WRITE, devicefilter.ACC_MKNOD


def test_program_shape_matches_runc() -> None:
    # runc's devicefilter test: deny all, then allow c 1:3 rwm
    insns = _prog([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    assert insns == [
        (0x61, 2, 1, 0, 0),
        (0x54, 2, 0, 0, 0xFFFF),
        (0x61, 3, 1, 0, 0),
        (0x74, 3, 0, 0, 16),
        (0x61, 4, 1, 4, 0),
        (0x61, 5, 1, 8, 0),
        (0x55, 2, 0, 4, CHAR),  # type != char -> next block
        (0x55, 4, 0, 3, 1),  # major != 1
        (0x55, 5, 0, 2, 3),  # minor != 3
        (0xB4, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
        (0xB4, 0, 0, 0, 0),  # default: deny
        (0x95, 0, 0, 0, 0),
    ]


def test_program_partial_access_block() -> None:
    insns = _prog([{"allow": True, "type": "b", "major": 8, "access": "r"}])
    block = insns[6:-2]
    assert block == [
        (0x55, 2, 0, 6, BLOCK),
        (0xBC, 1, 3, 0, 0),
        (0x54, 1, 0, 0, R),
        (0x5D, 1, 3, 3, 0),
        (0x55, 4, 0, 2, 8),
        (0xB4, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
    ]


def test_program_behaviour_default_rules() -> None:
    res = cgroups.create_resources({"resources": {"devices": [{"allow": False, "access": "rwm"}]}})
    insns = devicefilter.program(devices.parse_rules(res["devices"]))
    run = devicefilter.run
    assert run(insns, CHAR, R | W, 1, 3) == 1  # /dev/null
    assert run(insns, CHAR, R, 136, 7) == 1  # /dev/pts/7
    assert run(insns, CHAR, M, 4, 1) == 1  # mknod of anything
    assert run(insns, CHAR, R, 4, 1) == 0  # /dev/tty1
    assert run(insns, BLOCK, R, 8, 0) == 0  # /dev/sda
    assert run(insns, BLOCK, M, 8, 0) == 1


def test_program_behaviour_deny_list() -> None:
    insns = _prog([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}])
    assert devicefilter.run(insns, CHAR, R, 1, 5) == 1
    assert devicefilter.run(insns, CHAR, W, 1, 5) == 0
    # any overlap with a denied access denies, as v1 does (runc's filter
    # would let an O_RDWR open through here)
    assert devicefilter.run(insns, CHAR, R | W, 1, 5) == 0
    assert insns[6:-2][3] == (0x15, 1, 0, 4, 0)  # jeq r1, 0 -> next block
    assert devicefilter.run(insns, BLOCK, W, 8, 0) == 1


def test_program_later_rules_win() -> None:
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ]
    insns = _prog(rules)
    assert devicefilter.run(insns, CHAR, R, 1, 3) == 1
    assert devicefilter.run(insns, CHAR, W, 1, 3) == 0


def test_program_huge_major_refused() -> None:
    with pytest.raises(InvalidArgument, match="major"):
        _prog([{"allow": True, "type": "c", "major": 1 << 33, "access": "r"}])


# ---- freezer ---------------------------------------------------------------


def test_freeze_thaw(host: FakeHost, ctr: V2Manager) -> None:
    ctr.freeze()
    assert host.writes == [("ctr/cgroup.freeze", "1")]
    assert ctr.frozen() is True
    ctr.thaw()
    assert host.writes[-1] == ("ctr/cgroup.freeze", "0")
    assert ctr.frozen() is False


def test_freeze_waits_for_events(host: FakeHost, ctr: V2Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []

    def freeze(dirpath: str, value: str) -> str:
        return value + "\n"  # cgroup.events still says "frozen 0"

    host.hooks["cgroup.freeze"] = freeze

    def sleep(_s: float) -> None:
        reads.append(1)
        if len(reads) == 3:
            host.put("ctr/cgroup.events", "populated 1\nfrozen 1\n")

    monkeypatch.setattr("time.sleep", sleep)
    ctr.freeze()
    assert len(reads) == 3


def test_freeze_unsupported(host: FakeHost, ctr: V2Manager) -> None:
    os.remove(f"{host.root}/ctr/cgroup.freeze")
    with pytest.raises(Unavailable, match="freezer not supported"):
        ctr.freeze()
    ctr.thaw()  # nothing to thaw: fine
    assert ctr.frozen() is False


# ---- observing -------------------------------------------------------------


def test_stats(host: FakeHost, ctr: V2Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hugetlb, "_sizes", ["2MB"])
    host.put("ctr/pids.current", "4\n")
    host.put("ctr/pids.max", "100\n")
    host.put("ctr/memory.stat", "anon 8192\nfile 4096\nkernel 100\n")
    host.put("ctr/memory.current", "12288\n")
    host.put("ctr/memory.max", f"{MB}\n")
    host.put("ctr/memory.peak", "20000\n")
    host.put("ctr/memory.swap.current", "100\n")
    host.put("ctr/memory.swap.max", "max\n")
    host.put("ctr/cpu.stat", "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n")
    host.put("ctr/io.stat", "8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n")
    host.put("ctr/hugetlb.2MB.current", "0\n")
    host.put("ctr/hugetlb.2MB.events", "max 2\n")
    st = ctr.stats()
    assert st["pids"] == {"current": 4, "limit": 100}
    assert st["memory"] == {
        "cache": 4096,
        "usage": {"limit": MB, "usage": 12288, "max": 20000, "failcnt": 0},
        "swap": {"limit": 2**64 - 1, "usage": 12388, "failcnt": 0},
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": {"anon": 8192, "file": 4096, "kernel": 100},
    }
    assert st["cpu"] == {
        "usage": {"total": 300000, "kernel": 100000, "user": 200000},
        "throttling": {"periods": 5, "throttledPeriods": 1, "throttledTime": 7000},
    }
    assert st["blkio"] == {
        "ioServiceBytesRecursive": [
            {"major": 8, "op": "Read", "value": 4096},
            {"major": 8, "op": "Write", "value": 512},
        ],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 2}, {"major": 8, "op": "Write", "value": 1}],
    }
    assert st["hugetlb"] == {"2MB": {"failcnt": 2}}
    assert st["cpuset"]["sched_load_balance"] == 0 and "cpus" not in st["cpuset"]
    json.dumps(st)


def test_stats_pids_without_controller(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/cgroup.procs", "1\n2\n3\n")
    os.remove(f"{host.root}/ctr/pids.max")
    assert ctr.stats()["pids"] == {"current": 3}


def test_oom_kill_count(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n")
    assert ctr.oom_kill_count() == 1
    os.remove(f"{host.root}/ctr/memory.events")
    assert ctr.oom_kill_count() == 0


def test_pids_destroy_state(host: FakeHost, ctr: V2Manager) -> None:
    host.put("ctr/cgroup.procs", "9\n")
    os.mkdir(f"{host.root}/ctr/sub")
    host.put("ctr/sub/cgroup.procs", "10\n")
    assert sorted(ctr.pids()) == [9, 10]
    state = json.loads(json.dumps(ctr.to_state()))
    assert state == {"version": 2, "root": host.root, "path": f"{host.root}/ctr"}
    again = cgroups.load_manager(state)
    assert isinstance(again, V2Manager) and again.path == ctr.path
    assert again.container_mounts() == [(host.root, "")]
    for dirpath, _dirs, names in os.walk(ctr.path):
        for name in names:
            os.remove(os.path.join(dirpath, name))
    assert ctr.exists()
    again.destroy()
    assert not ctr.exists()
    again.destroy()


def test_swap_conversion_function() -> None:
    assert memory.swap_v2(0, -1) == -1
    assert memory.swap_v2(-1, 100) == -1
    assert memory.swap_v2(0, 100) == 0
    assert memory.swap_v2(300, 100) == 200
