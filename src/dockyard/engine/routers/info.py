"""GET /info in Docker 20.10's shape (types.Info): host facts, kernel features, daemon settings.

Kernel features are read from /proc and the cgroup filesystem the way dockerd's sysinfo does
(a controller file present = the feature is there); nothing is cached, the answer is cheap.
"""

from __future__ import annotations

import ipaddress
import os
import platform
import socket
import threading
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dockyard.engine import version
from dockyard.engine.daemon import timefmt
from dockyard.engine.server.responses import json_response
from dockyard.engine.server.router import Router, daemon_of
from dockyard.runtime import cgroups
from dockyard.supervisor.images import ID_LABEL

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

CGROUP_ROOT = "/sys/fs/cgroup"
FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}
INDEX_SERVER = "https://index.docker.io/v1/"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    out = {}
    for line in _read(path).splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key] = value.strip().strip('"')
    return out


def mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def backing_fs(path: str) -> str:
    """The filesystem holding ``path`` (longest mount point prefix in mountinfo), as dockerd names it."""
    best, fstype = "", "unknown"
    real = os.path.realpath(path)
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
            best, fstype = mount_point, line.split(" - ", 1)[1].split()[0]
    return FS_NAMES.get(fstype, fstype)


def cgroup_features(root: str = CGROUP_ROOT) -> dict[str, Any]:
    """Docker's sysinfo flags for the cgroup version mounted at ``root``."""
    if cgroups.detect(root) == 2:
        controllers = set(_read(os.path.join(root, "cgroup.controllers")).split())
        has = controllers.__contains__
        swap = any(os.path.exists(os.path.join(d, "memory.swap.max")) for d in _children(root))
        return {"CgroupVersion": "2", "MemoryLimit": has("memory"), "SwapLimit": has("memory") and swap,
                "KernelMemory": False, "KernelMemoryTCP": False, "CpuCfsPeriod": has("cpu"),
                "CpuCfsQuota": has("cpu"), "CPUShares": has("cpu"), "CPUSet": has("cpuset"),
                "PidsLimit": has("pids"), "OomKillDisable": False}

    def present(*parts: str) -> bool:
        return os.path.exists(os.path.join(root, *parts))
    return {"CgroupVersion": "1", "MemoryLimit": present("memory", "memory.limit_in_bytes"),
            "SwapLimit": present("memory", "memory.memsw.limit_in_bytes"),
            "KernelMemory": present("memory", "memory.kmem.limit_in_bytes"),
            "KernelMemoryTCP": present("memory", "memory.kmem.tcp.limit_in_bytes"),
            "CpuCfsPeriod": present("cpu", "cpu.cfs_period_us"), "CpuCfsQuota": present("cpu", "cpu.cfs_quota_us"),
            "CPUShares": present("cpu", "cpu.shares"), "CPUSet": present("cpuset", "cpuset.cpus"),
            "PidsLimit": present("pids"), "OomKillDisable": present("memory", "memory.oom_control")}


def _children(root: str) -> list[str]:
    """Direct child cgroups of ``root`` (memory.swap.max exists only below the root cgroup)."""
    try:
        return [e.path for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return []


def registry_config(insecure: tuple[str, ...], mirrors: tuple[str, ...]) -> dict[str, Any]:
    """RegistryConfig: insecure CIDRs (127.0.0.0/8 always), insecure hostnames as index configs."""
    cidrs, index = ["127.0.0.0/8"], {}
    for entry in insecure:
        try:
            net = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            index[entry] = {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
            continue
        if net not in cidrs:
            cidrs.append(net)
    index["docker.io"] = {"Name": "docker.io", "Mirrors": list(mirrors), "Secure": True, "Official": True}
    return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": list(mirrors)}


def warnings(features: dict[str, Any], ip_forward: bool, bridge_nf: bool) -> list[str]:
    out = []
    if not features["MemoryLimit"]:
        out.append("WARNING: No memory limit support")
    if not features["SwapLimit"]:
        out.append("WARNING: No swap limit support")
    if features["CgroupVersion"] == "1" and not features["KernelMemory"]:
        out.append("WARNING: No kernel memory limit support")
    if not features["CpuCfsQuota"]:
        out.append("WARNING: No cpu cfs quota support")
    if not ip_forward:
        out.append("WARNING: IPv4 forwarding is disabled")
    if not bridge_nf:
        out.append("WARNING: bridge-nf-call-iptables is disabled")
    return out


def _env(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.lower()) or ""


def _count_images(daemon: Daemon) -> int:
    return len({r.labels.get(ID_LABEL, r.target.digest) for r in daemon.images.list()})


def _counts(daemon: Daemon) -> tuple[int, int, int, int]:
    counts = getattr(daemon.containers, "counts", None)
    return tuple(counts()) if counts else (0, 0, 0, 0)  # type: ignore[return-value]


def _cgroup_driver(exec_opts: tuple[str, ...]) -> str:
    for opt in exec_opts:
        key, _, value = opt.partition("=")
        if key.strip() == "native.cgroupdriver" and value.strip():
            return value.strip()
    return "cgroupfs"


def system_info(daemon: Daemon, image_count: int) -> dict[str, Any]:
    """The whole /info document."""
    config = daemon.config
    total, running, paused, stopped = _counts(daemon)
    features = cgroup_features()
    ip_forward = _read("/proc/sys/net/ipv4/ip_forward") == "1"
    bridge_nf = _read("/proc/sys/net/bridge/bridge-nf-call-iptables") == "1"
    release = os_release()
    vfs = daemon.snapshotter_name != "overlayfs"
    driver_status = [] if vfs else [["Backing Filesystem", backing_fs(config.data_root)],
                                    ["Supports d_type", "true"], ["Native Overlay Diff", "true"],
                                    ["userxattr", "false"]]
    security = ["name=seccomp,profile=default"]
    if features["CgroupVersion"] == "2":
        security.append("name=cgroupns")
    if config.no_new_privileges:
        security.append("name=no-new-privileges")
    commit = {"ID": version.GIT_COMMIT, "Expected": version.GIT_COMMIT}
    info: dict[str, Any] = {
        "ID": daemon.id, "Containers": total, "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": stopped, "Images": image_count, "Driver": "vfs" if vfs else "overlay2",
        "DriverStatus": driver_status,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file", "none"]}}
    info.update({k: features[k] for k in ("MemoryLimit", "SwapLimit", "KernelMemory", "KernelMemoryTCP",
                                          "CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit")})
    info.update({
        "IPv4Forwarding": ip_forward, "BridgeNfIptables": bridge_nf,
        "BridgeNfIp6tables": _read("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == "1",
        "Debug": config.debug, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": features["OomKillDisable"],
        "NGoroutines": threading.active_count(), "SystemTime": timefmt.now_rfc3339(),
        "LoggingDriver": config.log_driver, "CgroupDriver": _cgroup_driver(config.exec_opts),
        "CgroupVersion": features["CgroupVersion"], "NEventsListener": daemon.events.listeners,
        "KernelVersion": platform.release(), "OperatingSystem": release.get("PRETTY_NAME", "Linux"),
        "OSVersion": release.get("VERSION_ID", ""), "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": INDEX_SERVER,
        "RegistryConfig": registry_config(config.insecure_registries, config.registry_mirrors),
        "NCPU": os.cpu_count() or 1, "MemTotal": mem_total(), "GenericResources": None,
        "DockerRootDir": config.data_root, "HttpProxy": _env("HTTP_PROXY"), "HttpsProxy": _env("HTTPS_PROXY"),
        "NoProxy": _env("NO_PROXY"), "Name": socket.gethostname(), "Labels": list(config.labels),
        "ExperimentalBuild": False, "ServerVersion": version.SERVER_VERSION,
        "Runtimes": {name: {"path": path, **({"runtimeArgs": list(config.runtime_args[name])}
                                             if config.runtime_args.get(name) else {})}
                     for name, path in config.runtimes.items()},
        "DefaultRuntime": config.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": config.live_restore, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": commit, "RuncCommit": dict(commit), "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": security, "Warnings": warnings(features, ip_forward, bridge_nf) or None})
    return info


async def get_info(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    images = await daemon.run_blocking(_count_images, daemon)
    return json_response(system_info(daemon, images))


def add_routes(router: Router) -> None:
    router.add("GET", "/info", get_info)
