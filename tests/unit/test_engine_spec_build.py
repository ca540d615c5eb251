"""build_spec end to end: namespaces, hostname, security, paths; checked by the runtime's validator."""

from __future__ import annotations

import json
import socket

import pytest

from dockyard.engine.daemon.spec import SpecInput, adapt_host_config, build_spec, merge_image_config, parse_mounts
from dockyard.engine.daemon.spec.defaults import DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS, all_capabilities
from dockyard.errors import InvalidArgument
from dockyard.oci import runtime_spec

CID = "0123456789ab" + "c" * 52


@pytest.fixture
def bundle(tmp_path):
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:root\n")
    for name in ("hostname", "hosts", "resolv.conf"):
        (tmp_path / name).write_text("x\n")
    return tmp_path


def make(bundle, config=None, host_config=None, image=None, **kw):
    image = image if image is not None else {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}
    cfg = merge_image_config(config or {}, image)
    hc = adapt_host_config(host_config or {}, cgroup_v2=kw.get("cgroup_v2", False))
    fields = dict(container_id=CID, config=cfg, host_config=hc, image_config=image,
                  rootfs=str(bundle / "rootfs"), mounts=parse_mounts(cfg, hc),
                  hostname_path=str(bundle / "hostname"), hosts_path=str(bundle / "hosts"),
                  resolv_conf_path=str(bundle / "resolv.conf"), network_ns=None, cgroups_path="/dockyard/" + CID,
                  cgroup_v2=False)
    fields.update(kw)
    return build_spec(SpecInput(**fields))


def ns_types(spec):
    return [ns["type"] for ns in spec["linux"]["namespaces"]]


def test_default_container_spec_is_valid(bundle):
    spec = make(bundle, {"Tty": True}, {"Binds": [f"{bundle}:/data"], "Tmpfs": {"/run": "size=1m"}})
    assert runtime_spec.validate(json.loads(json.dumps(spec)), str(bundle)) == str(bundle / "rootfs")
    assert spec["ociVersion"] == "1.0.2" and spec["hostname"] == CID[:12]
    assert spec["root"] == {"path": str(bundle / "rootfs")}  # false / empty fields left out, as dockerd
    assert spec["process"]["args"] == ["/bin/sh"] and spec["process"]["env"] == ["PATH=/bin", f"HOSTNAME={CID[:12]}", "TERM=xterm"]
    assert spec["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPS)
    assert "noNewPrivileges" not in spec["process"] and "rlimits" not in spec["process"]
    assert ns_types(spec) == ["mount", "network", "uts", "pid", "ipc"]
    linux = spec["linux"]
    assert linux["maskedPaths"] == list(MASKED_PATHS) and linux["readonlyPaths"] == list(READONLY_PATHS)
    assert linux["cgroupsPath"] == "/dockyard/" + CID and "devices" not in linux
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert set(linux.get("sysctl", {})) <= {"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[-4:] == ["/run", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"] and "/data" in dests
    assert [m for m in spec["mounts"] if m["destination"] == "/dev/shm"][0]["options"][-1] == f"size={64 << 20}"


def test_cgroup_v2_gets_a_cgroup_namespace(bundle):
    assert ns_types(make(bundle, cgroup_v2=True))[-1] == "cgroup"
    assert "cgroup" not in ns_types(make(bundle, host_config={"CgroupnsMode": "host"}, cgroup_v2=True))
    assert "cgroup" in ns_types(make(bundle, host_config={"CgroupnsMode": "private"}))
    with pytest.raises(InvalidArgument, match="^invalid cgroup namespace mode: odd$"):
        make(bundle, host_config={"CgroupnsMode": "odd"})


def test_privileged(bundle):
    spec = make(bundle, host_config={"Privileged": True})
    assert runtime_spec.validate(spec, str(bundle))
    assert spec["process"]["capabilities"]["effective"] == all_capabilities()
    linux = spec["linux"]
    assert "seccomp" not in linux and "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in linux["devices"])
    sysfs = [m for m in spec["mounts"] if m["destination"] == "/sys"][0]
    assert "ro" not in sysfs["options"]


def test_host_network_uts_ipc_pid(bundle):
    spec = make(bundle, host_config={"NetworkMode": "host", "IpcMode": "host", "PidMode": "host"}, network_ns="host")
    assert ns_types(spec) == ["mount", "uts"] and spec["hostname"] == socket.gethostname()
    assert "sysctl" not in spec["linux"] and spec["process"]["env"][1] == "HOSTNAME=" + socket.gethostname()
    assert runtime_spec.validate(spec, str(bundle))
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [{"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]}]
    uts = make(bundle, {"Hostname": "ignored"}, {"UTSMode": "host"})
    assert "uts" not in ns_types(uts) and "hostname" not in uts and runtime_spec.validate(uts, str(bundle))


def test_joined_namespaces(bundle):
    spec = make(bundle, {"Hostname": "h", "Domainname": "example.com"},
                {"IpcMode": "container:abc", "PidMode": "container:abc", "NetworkMode": "container:abc"},
                network_ns="/proc/self/ns/net",
                namespace_paths={"ipc": "/proc/self/ns/ipc", "pid": "/proc/self/ns/pid"})
    paths = {ns["type"]: ns.get("path") for ns in spec["linux"]["namespaces"]}
    assert paths == {"mount": None, "network": "/proc/self/ns/net", "uts": None,
                     "pid": "/proc/self/ns/pid", "ipc": "/proc/self/ns/ipc"}
    assert spec["hostname"] == "h" and "domainname" not in spec
    assert spec["linux"]["sysctl"] == {"kernel.domainname": "example.com"}  # no net defaults: joined netns
    assert runtime_spec.validate(spec, str(bundle))
    with pytest.raises(InvalidArgument, match="ipc namespace path of that container was not provided"):
        make(bundle, host_config={"IpcMode": "container:abc"})
    with pytest.raises(InvalidArgument, match="^Invalid IPC mode: weird$"):
        make(bundle, host_config={"IpcMode": "weird"})


def test_init(bundle):
    spec = make(bundle, host_config={"Init": True}, init_path="/usr/libexec/docker-init")
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "/bin/sh"]
    assert {"destination": "/sbin/docker-init", "type": "bind", "source": "/usr/libexec/docker-init",
            "options": ["bind", "ro"]} in spec["mounts"]
    host_pid = make(bundle, host_config={"Init": True, "PidMode": "host"}, init_path="/x")
    assert host_pid["process"]["args"] == ["/bin/sh"]
    with pytest.raises(InvalidArgument, match="docker-init"):
        make(bundle, host_config={"Init": True})


def test_security_options(bundle):
    spec = make(bundle, host_config={"SecurityOpt": ["seccomp=unconfined", "no-new-privileges", "apparmor=x"]})
    assert "seccomp" not in spec["linux"] and spec["process"]["noNewPrivileges"] is True
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    spec = make(bundle, host_config={"SecurityOpt": ["seccomp=" + custom]})
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW",
                                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    assert make(bundle, no_new_privileges=True)["process"]["noNewPrivileges"] is True
    daemon_profile = json.dumps({"defaultAction": "SCMP_ACT_LOG"})
    assert make(bundle, seccomp_profile=daemon_profile)["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_LOG"


def test_paths_override_readonly_rootfs_and_sysctls(bundle):
    spec = make(bundle, host_config={"MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"], "ReadonlyRootfs": True,
                                     "Sysctls": {"net.core.somaxconn": "1024"}, "ShmSize": 1 << 20})
    assert "maskedPaths" not in spec["linux"] and spec["linux"]["readonlyPaths"] == ["/proc/sys"]
    assert spec["root"]["readonly"] is True and spec["linux"]["sysctl"]["net.core.somaxconn"] == "1024"
    by = {m["destination"]: m for m in spec["mounts"]}
    assert by["/etc/hosts"]["options"] == ["rbind", "ro", "rprivate"]
    assert by["/dev/shm"]["options"][-1] == f"size={1 << 20}"


def test_adapt_host_config():
    hc = adapt_host_config({"Memory": 100 << 20, "CapAdd": ["net_admin"], "CapDrop": ["ALL"]}, cgroup_v2=True)
    assert hc["MemorySwap"] == 200 << 20 and hc["ShmSize"] == 64 << 20 and hc["IpcMode"] == "private"
    assert hc["CgroupnsMode"] == "private" and hc["OomKillDisable"] is False
    assert hc["CapAdd"] == ["net_admin"] and hc["CapDrop"] == ["ALL"]  # stored as given
    with pytest.raises(InvalidArgument, match='^invalid CapDrop: unknown capability: "CAP_FLY"$'):
        adapt_host_config({"CapDrop": ["fly"]})
    assert hc["MaskedPaths"] == list(MASKED_PATHS)
    priv = adapt_host_config({"Privileged": True}, cgroup_v2=False)
    assert priv["CgroupnsMode"] == "host" and priv.get("MaskedPaths") is None
    with pytest.raises(InvalidArgument, match=r"range for oom score adj is \[-1000, 1000\]"):
        adapt_host_config({"OomScoreAdj": 1001})
    with pytest.raises(InvalidArgument, match="SHM size can not be less than 0"):
        adapt_host_config({"ShmSize": -1})
