"""Container stats in Docker's StatsJSON shape, from fake cgroup v1 and v2 trees and a fake /proc."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.engine.daemon import stats
from dockyard.runtime.cgroups import paths

PID = 4242
MEMTOTAL_KB = 2_000_000
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    5000      50    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
"""


def put(base: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = os.path.join(base, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def fake_proc(tmp: str, cgroup: str, net: str = NET_DEV) -> str:
    proc = os.path.join(tmp, "proc")
    put(
        proc,
        {
            f"{PID}/cgroup": cgroup,
            f"{PID}/net/dev": net,
            "stat": "cpu  100 2 30 1000 4 0 5 7 0 0\ncpu0 50 1 15 500 2 0 3 0 0 0\nintr 1\n",
            "meminfo": f"MemTotal:       {MEMTOTAL_KB} kB\nMemFree: 1 kB\n",
        },
    )
    return proc


V1_CG = "/docker/abc"


@pytest.fixture
def v1(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    root = str(tmp_path / "cgroup")
    subs = ("memory", "cpu", "cpuacct", "pids", "blkio")
    mountinfo = "".join(
        f"{30 + i} 25 0:{40 + i} / {root}/{s} rw,nosuid - cgroup cgroup rw,{s}\n" for i, s in enumerate(subs)
    )
    put(str(tmp_path), {"mountinfo": mountinfo})
    monkeypatch.setattr(paths, "MOUNTINFO", str(tmp_path / "mountinfo"))
    monkeypatch.setattr(paths, "_mounts_cache", None)
    cg = "".join(f"{i + 2}:{s}:{V1_CG}\n" for i, s in enumerate(subs)) + "1:name=systemd:/x\n0::/\n"
    proc = fake_proc(str(tmp_path), cg)
    d = lambda s: f"{s}{V1_CG}"  # noqa: E731
    put(
        root,
        {
            d("memory") + "/memory.stat": "cache 4096\nrss 8192\ntotal_rss 8192\npgfault 9\nswap 0\n",
            d("memory") + "/memory.usage_in_bytes": "123456\n",
            d("memory") + "/memory.max_usage_in_bytes": "200000\n",
            d("memory") + "/memory.limit_in_bytes": "9223372036854771712\n",
            d("memory") + "/memory.failcnt": "3\n",
            d("cpu") + "/cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 777\n",
            d("cpuacct") + "/cpuacct.stat": "user 5\nsystem 7\n",
            d("cpuacct") + "/cpuacct.usage": "999000\n",
            d("cpuacct") + "/cpuacct.usage_percpu": "600000 399000 \n",
            d("pids") + "/pids.current": "3\n",
            d("pids") + "/pids.max": "max\n",
            d("blkio") + "/blkio.throttle.io_serviced": "8:0 Read 2\n8:0 Write 1\n8:0 Total 3\nTotal 3\n",
            d("blkio") + "/blkio.throttle.io_service_bytes": "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
        },
    )
    return root, proc


@pytest.fixture
def v2(tmp_path):  # type: ignore[no-untyped-def]
    root = str(tmp_path / "cgroup2")
    cg = "/system.slice/docker-abc.scope"
    proc = fake_proc(str(tmp_path), f"0::{cg}\n", net=NET_DEV.split("  eth0")[0])
    put(
        root,
        {
            "cgroup.controllers": "cpu io memory pids\n",
            cg[1:] + "/cgroup.procs": f"{PID}\n",
            cg[1:] + "/cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
            "nr_throttled 1\nthrottled_usec 20\n",
            cg[1:] + "/memory.current": "65536\n",
            cg[1:] + "/memory.max": "104857600\n",
            cg[1:] + "/memory.stat": "anon 1000\nfile 2000\npgfault 5\n",
            cg[1:] + "/memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
            cg[1:] + "/memory.swap.current": "0\n",
            cg[1:] + "/memory.swap.max": "max\n",
            cg[1:] + "/pids.current": "2\n",
            cg[1:] + "/pids.max": "100\n",
            cg[1:] + "/io.stat": "8:0 rbytes=4096 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\n",
        },
    )
    return root, proc


def test_v1_shape_and_values(v1) -> None:  # type: ignore[no-untyped-def]
    root, proc = v1
    s = stats.StatsSampler(PID, "web", "abc", cgroup_root=root, proc=proc)
    got = s.sample()
    assert list(got) == [
        "read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
        "cpu_stats", "precpu_stats", "memory_stats", "name", "id", "networks",
    ]  # fmt: skip
    assert got["name"] == "/web" and got["id"] == "abc"
    assert got["read"].endswith("Z") and got["preread"] == "0001-01-01T00:00:00Z"
    assert got["pids_stats"] == {"current": 3}
    assert got["num_procs"] == 0 and got["storage_stats"] == {}
    cpu = got["cpu_stats"]
    assert cpu["cpu_usage"] == {
        "total_usage": 999000,
        "percpu_usage": [600000, 399000],
        "usage_in_kernelmode": 70_000_000,
        "usage_in_usermode": 50_000_000,
    }
    assert cpu["system_cpu_usage"] == (100 + 2 + 30 + 1000 + 4 + 0 + 5) * 10_000_000
    assert cpu["online_cpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert cpu["throttling_data"] == {"periods": 10, "throttled_periods": 2, "throttled_time": 777}
    assert got["precpu_stats"] == stats.zero_cpu_stats()
    mem = got["memory_stats"]
    assert mem["usage"] == 123456 and mem["max_usage"] == 200000 and mem["failcnt"] == 3
    assert mem["limit"] == MEMTOTAL_KB * 1024  # unlimited: capped at the host's memory
    assert mem["stats"]["cache"] == 4096 and mem["stats"]["total_rss"] == 8192 and mem["stats"]["dirty"] == 0
    assert "swap" not in mem["stats"] and len(mem["stats"]) == len(stats.V1_MEMORY_KEYS)
    blk = got["blkio_stats"]
    assert blk["io_service_bytes_recursive"][0] == {"major": 8, "minor": 0, "op": "Read", "value": 4096}
    assert [e["op"] for e in blk["io_serviced_recursive"]] == ["Read", "Write", "Total"]
    assert blk["sectors_recursive"] == []
    assert got["networks"] == {
        "eth0": {
            "rx_bytes": 5000, "rx_packets": 50, "rx_errors": 1, "rx_dropped": 2,
            "tx_bytes": 3000, "tx_packets": 30, "tx_errors": 3, "tx_dropped": 4,
        }
    }  # fmt: skip
    json.dumps(got)


def test_precpu_is_previous_sample(v1) -> None:  # type: ignore[no-untyped-def]
    root, proc = v1
    s = stats.StatsSampler(PID, "/web", "abc", cgroup_root=root, proc=proc)
    first = s.sample()
    with open(os.path.join(root, f"cpuacct{V1_CG}/cpuacct.usage"), "w") as f:
        f.write("2000000\n")
    second = s.sample()
    assert second["precpu_stats"] == first["cpu_stats"]
    assert second["preread"] == first["read"]
    assert second["cpu_stats"]["cpu_usage"]["total_usage"] == 2000000
    assert second["name"] == "/web"


def test_v2_shape_and_values(v2) -> None:  # type: ignore[no-untyped-def]
    root, proc = v2
    got = stats.StatsSampler(PID, "db", "def", cgroup_root=root, proc=proc).sample()
    assert "networks" not in got  # only lo: omitted, as for --network none
    assert got["pids_stats"] == {"current": 2, "limit": 100}
    assert got["cpu_stats"]["cpu_usage"] == {
        "total_usage": 1_500_000,
        "usage_in_kernelmode": 500_000,
        "usage_in_usermode": 1_000_000,
    }
    assert got["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 1, "throttled_time": 20_000}
    mem = got["memory_stats"]
    assert mem["usage"] == 65536 and mem["limit"] == 104857600 and mem["failcnt"] == 2
    assert "max_usage" not in mem
    assert mem["stats"]["anon"] == 1000 and mem["stats"]["file"] == 2000 and mem["stats"]["slab"] == 0
    assert set(mem["stats"]) == set(stats.V2_MEMORY_KEYS)
    blk = got["blkio_stats"]
    assert blk["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 1024},
    ]
    assert blk["io_serviced_recursive"] is None and blk["sectors_recursive"] is None


def test_v2_unlimited_memory_capped(v2) -> None:  # type: ignore[no-untyped-def]
    root, proc = v2
    with open(os.path.join(root, "system.slice/docker-abc.scope/memory.max"), "w") as f:
        f.write("max\n")
    got = stats.StatsSampler(PID, "db", "def", cgroup_root=root, proc=proc).sample()
    assert got["memory_stats"]["limit"] == MEMTOTAL_KB * 1024


def test_stopped_container_zeroed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = fake_proc(str(tmp_path), "0::/gone\n")
    os.remove(os.path.join(proc, str(PID), "cgroup"))
    got = stats.StatsSampler(PID, "web", "abc", cgroup_root=str(tmp_path), proc=proc).sample()
    assert got == {
        "read": "0001-01-01T00:00:00Z",
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {},
        "blkio_stats": {k: None for k, _ in stats.BLKIO_KEYS},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": stats.zero_cpu_stats(),
        "precpu_stats": stats.zero_cpu_stats(),
        "memory_stats": {},
        "name": "/web",
        "id": "abc",
    }


def test_cgroup_removed_counts_as_stopped(v2) -> None:  # type: ignore[no-untyped-def]
    import shutil

    root, proc = v2
    s = stats.StatsSampler(PID, "db", "def", cgroup_root=root, proc=proc)
    first = s.sample()
    shutil.rmtree(os.path.join(root, "system.slice"))
    got = s.sample()
    assert got["read"] == "0001-01-01T00:00:00Z" and got["preread"] == first["read"]
    assert got["precpu_stats"] == first["cpu_stats"]


def test_system_cpu_usage_real_proc() -> None:
    assert stats.system_cpu_usage() > 0
    assert stats.machine_memory() > 0
