"""HostConfig resources -> linux.resources, device mappings and their checks."""

from __future__ import annotations

import os

import pytest

from dockyard.engine.daemon.spec import resources_to_oci, validate_resources
from dockyard.engine.daemon.spec.defaults import default_device_rules
from dockyard.engine.daemon.spec.devices import container_devices, devices_from_path, parse_cgroup_rule
from dockyard.errors import InvalidArgument

NULL = os.stat("/dev/null")


def test_empty_resources():
    assert resources_to_oci({}) == {"memory": {}, "cpu": {"shares": 0}, "blockIO": {"weight": 0}}


def test_full_resources():
    r = {"Memory": 64 << 20, "MemorySwap": 128 << 20, "MemoryReservation": 32 << 20, "MemorySwappiness": 10,
         "KernelMemory": 8 << 20, "OomKillDisable": True, "NanoCpus": 1_500_000_000, "CpuShares": 512,
         "CpusetCpus": "0-1", "CpusetMems": "0", "CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 500,
         "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 10}],
         "BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1024}], "PidsLimit": 100}
    dev = {"major": os.major(NULL.st_rdev), "minor": os.minor(NULL.st_rdev)}
    assert resources_to_oci(r) == {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10,
                   "disableOOMKiller": True, "kernel": 8 << 20},
        "cpu": {"shares": 512, "cpus": "0-1", "mems": "0", "period": 100000, "quota": 150000,
                "realtimePeriod": 1000, "realtimeRuntime": 500},
        "blockIO": {"weight": 300, "weightDevice": [{**dev, "weight": 10}],
                    "throttleReadBpsDevice": [{**dev, "rate": 1024}]},
        "pids": {"limit": 100},
    }


def test_resource_special_values():
    assert resources_to_oci({"PidsLimit": 0})["pids"] == {"limit": -1}
    assert resources_to_oci({"PidsLimit": -1})["pids"] == {"limit": -1}
    assert "swappiness" not in resources_to_oci({"MemorySwappiness": -1})["memory"]
    assert resources_to_oci({"CpuPeriod": 50000, "CpuQuota": 25000})["cpu"] == {"shares": 0, "period": 50000, "quota": 25000}
    assert "swap" not in resources_to_oci({"Memory": 1 << 30, "MemorySwap": -1})["memory"]
    with pytest.raises(InvalidArgument, match="^shares: invalid argument$"):
        resources_to_oci({"CpuShares": -1})
    with pytest.raises(InvalidArgument, match="stat /nonexistent"):
        resources_to_oci({"BlkioDeviceWriteIOps": [{"Path": "/nonexistent", "Rate": 1}]})


@pytest.mark.parametrize("r, update, message", [
    ({"Memory": 1024}, False, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, False, "Minimum memoryswap limit should be larger than memory limit"),
    ({"MemorySwap": 64 << 20}, False, "You should always set the Memory limit when using Memoryswap limit"),
    ({"MemorySwappiness": 101}, False, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"MemoryReservation": 1}, False, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 8 << 20, "MemoryReservation": 16 << 20}, False, "Minimum memory limit can not be less than memory reservation"),
    ({"NanoCpus": 1, "CpuPeriod": 1000}, False, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 1, "CpuQuota": 1000}, False, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 3 * 10**9}, False, r"Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"CpuPeriod": 10}, False, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 10}, False, "CPU cfs quota can not be less than 1ms"),
    ({"BlkioWeight": 5}, False, "Range of blkio weight is from 10 to 1000"),
])
def test_validate_resources_errors(r, update, message):
    with pytest.raises(InvalidArgument, match=message):
        validate_resources(r, update=update, ncpu=2)


def test_validate_resources_ok_and_warnings():
    assert validate_resources({"MemorySwap": 64 << 20}, update=True, ncpu=2) == []
    assert validate_resources({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 10**9}, ncpu=2) == []
    assert validate_resources({"OomKillDisable": True}, ncpu=2)[0].startswith("OOM killer is disabled")


def test_device_mapping():
    devs, rules = devices_from_path("/dev/null", "/dev/mynull", "rw")
    major, minor = os.major(NULL.st_rdev), os.minor(NULL.st_rdev)
    assert devs == [{"path": "/dev/mynull", "type": "c", "major": major, "minor": minor,
                     "fileMode": NULL.st_mode & 0o7777, "uid": NULL.st_uid, "gid": NULL.st_gid}]
    assert rules == [{"allow": True, "type": "c", "major": major, "minor": minor, "access": "rw"}]
    with pytest.raises(InvalidArgument, match='error gathering device information while adding custom device "/etc/hostname"'):
        devices_from_path("/etc/hostname", "/dev/x", "rwm")


def test_device_directory_mapping(tmp_path):
    devs, _ = devices_from_path("/dev", "/hostdev", "r")
    assert any(d["path"] == "/hostdev/null" for d in devs) and all(d["path"].startswith("/hostdev/") for d in devs)


def test_cgroup_rules():
    assert parse_cgroup_rule("c 1:3 mr") == {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mr"}
    assert parse_cgroup_rule("b *:* rwm") == {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "rwm"}
    for bad in ("c 1:3", "x 1:3 rwm", "c 1:3 rwmx", "c a:3 r"):
        with pytest.raises(InvalidArgument, match=f"^invalid device cgroup rule format: '{bad}'$"):
            parse_cgroup_rule(bad)


def test_container_devices():
    devs, rules = container_devices({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n2",
                                                  "CgroupPermissions": "rwm"}], "DeviceCgroupRules": ["c 42:* rmw"]})
    assert [d["path"] for d in devs] == ["/dev/n2"]
    assert rules[: len(default_device_rules())] == default_device_rules()
    assert rules[-1] == {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"}
    pdevs, prules = container_devices({"Privileged": True, "DeviceCgroupRules": ["c 1:1 r"]})
    assert prules == [{"allow": True, "access": "rwm"}]
    paths = [d["path"] for d in pdevs]
    assert "/dev/null" in paths and "/dev/console" not in paths and not any(p.startswith("/dev/pts/") for p in paths)


def test_merge_update():
    from dockyard.engine.daemon.spec import merge_update
    from dockyard.errors import Conflict

    stored = {"Memory": 64 << 20, "MemorySwap": 128 << 20, "CpuShares": 512, "PidsLimit": 10, "Privileged": False}
    got = merge_update(stored, {"Memory": 96 << 20, "CpuShares": 0, "PidsLimit": 0, "CpusetCpus": "0",
                                "RestartPolicy": {"Name": "always"}})
    assert got == {**stored, "Memory": 96 << 20, "PidsLimit": 0, "CpusetCpus": "0", "RestartPolicy": {"Name": "always"}}
    assert stored["Memory"] == 64 << 20
    cases = [
        ({"Memory": 256 << 20}, stored, "Memory limit should be smaller than already set memoryswap limit"),
        ({"NanoCpus": 10**9}, {"CpuQuota": 5000}, "Nano CPUs cannot be updated as CPU Quota has already been set"),
        ({"CpuPeriod": 5000}, {"NanoCpus": 10**9}, "CPU Period cannot be updated as NanoCPUs has already been set"),
        ({"RestartPolicy": {"Name": "always"}}, {"AutoRemove": True}, "Restart policy cannot be updated because AutoRemove"),
    ]
    for update, base, message in cases:
        with pytest.raises(Conflict, match=message):
            merge_update(base, update)


def test_update_resources_to_oci():
    from dockyard.engine.daemon.spec import update_resources_to_oci

    got = update_resources_to_oci({"Memory": 96 << 20, "MemorySwap": -1, "NanoCpus": 5 * 10**8, "PidsLimit": 0})
    assert got == {"blockIO": {"weight": 0}, "cpu": {"shares": 0, "cpus": "", "mems": "", "period": 100000, "quota": 50000},
                   "memory": {"limit": 96 << 20, "reservation": 0, "kernel": 0}, "pids": {"limit": -1}}
