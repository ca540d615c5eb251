"""build_spec: a container's stored Config + HostConfig -> OCI config.json (as dockerd 20.10).

The pieces come from the sibling modules; this module decides namespaces,
hostname, sysctls, masked paths and seccomp, and assembles the document.
"""

from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass, field

from ....errors import InvalidArgument
from .defaults import DEFAULT_NAMESPACES, DEFAULT_SHM_SIZE, MASKED_PATHS, OCI_VERSION, READONLY_PATHS
from .devices import container_devices
from .mounts import MountPoint
from .process import merge_image_config, process_spec
from .resources import resources_to_oci
from .seccomp_default import default_profile
from .seccomp_profile import load_profile, to_oci
from .security import normalize_capabilities, parse_security_opts
from .specmounts import MountContext, rootfs_propagation, spec_mounts

_SYSCTL_DEFAULTS = (("net.ipv4.ping_group_range", "0 2147483647"), ("net.ipv4.ip_unprivileged_port_start", "0"))


@dataclass(frozen=True)
class SpecInput:
    """Everything build_spec needs; ``config`` is the stored (image-merged) Config."""

    container_id: str
    config: dict
    host_config: dict
    image_config: dict
    rootfs: str
    mounts: list[MountPoint]
    hostname_path: str
    hosts_path: str
    resolv_conf_path: str
    network_ns: str | None  # None: new netns; "host": the host's; a path: join it
    cgroups_path: str
    default_ulimits: dict[str, tuple[int, int]] = field(default_factory=dict)
    init_path: str | None = None
    # Additions: namespaces of other containers for container:<id> modes ({"ipc": path, "pid": path}),
    # the /dev/shm to bind for ipc host/container/shareable, daemon-wide defaults.
    namespace_paths: dict[str, str] = field(default_factory=dict)
    shm_path: str | None = None
    no_new_privileges: bool = False
    seccomp_profile: str | None = None  # the daemon's --seccomp-profile JSON, if any
    cgroup_v2: bool | None = None  # None: detect
    link_env: list[str] = field(default_factory=list)  # --link variables (ALIAS_NAME, ALIAS_PORT_...)


def cgroup_v2_host() -> bool:
    """Whether /sys/fs/cgroup is the unified (v2) hierarchy."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def adapt_host_config(host_config: dict, cgroup_v2: bool | None = None,
                      shm_size: int = DEFAULT_SHM_SIZE) -> dict:
    """The HostConfig dockerd stores at create: defaults filled in, capabilities checked."""
    hc = copy.deepcopy(host_config or {})
    if (hc.get("Memory") or 0) > 0 and not hc.get("MemorySwap"):
        hc["MemorySwap"] = hc["Memory"] * 2
    if not hc.get("ShmSize"):
        hc["ShmSize"] = shm_size
    if hc.get("ShmSize", 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    hc["IpcMode"] = hc.get("IpcMode") or "private"
    if not hc.get("CgroupnsMode"):
        v2 = cgroup_v2_host() if cgroup_v2 is None else cgroup_v2
        hc["CgroupnsMode"] = "private" if v2 else "host"
    if hc.get("OomKillDisable") is None:
        hc["OomKillDisable"] = False
    score = hc.get("OomScoreAdj") or 0
    if not -1000 <= score <= 1000:
        raise InvalidArgument(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    if not hc.get("Privileged"):
        if hc.get("MaskedPaths") is None:
            hc["MaskedPaths"] = list(MASKED_PATHS)
        if hc.get("ReadonlyPaths") is None:
            hc["ReadonlyPaths"] = list(READONLY_PATHS)
    for key in ("CapAdd", "CapDrop"):  # checked, stored as given (dockerd normalizes them at start)
        try:
            normalize_capabilities(hc.get(key))
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid {key}: {e.message}") from None
    return hc


def _set_ns(namespaces: list[dict], kind: str, path: str | None = None, remove: bool = False) -> None:
    namespaces[:] = [ns for ns in namespaces if ns["type"] != kind]
    if not remove:
        namespaces.append({"type": kind, "path": path} if path else {"type": kind})


def _shared_path(inp: SpecInput, kind: str, mode: str) -> str:
    path = inp.namespace_paths.get(kind)
    if not path:
        raise InvalidArgument(f"{kind} mode {mode}: the {kind} namespace path of that container was not provided")
    return path


def _namespaces(inp: SpecInput) -> list[dict]:
    hc = inp.host_config
    nss = [{"type": t} for t in DEFAULT_NAMESPACES]
    if inp.network_ns == "host":
        _set_ns(nss, "network", remove=True)
    elif inp.network_ns:
        _set_ns(nss, "network", inp.network_ns)
    ipc = hc.get("IpcMode") or "private"
    if ipc == "host":
        _set_ns(nss, "ipc", remove=True)
    elif ipc.startswith("container:"):
        _set_ns(nss, "ipc", _shared_path(inp, "ipc", ipc))
    elif ipc not in ("private", "shareable", "none"):
        raise InvalidArgument(f"Invalid IPC mode: {ipc}")
    pid = hc.get("PidMode") or ""
    if pid == "host":
        _set_ns(nss, "pid", remove=True)
    elif pid.startswith("container:"):
        _set_ns(nss, "pid", _shared_path(inp, "pid", pid))
    if hc.get("UTSMode") == "host":
        _set_ns(nss, "uts", remove=True)
    cgns = hc.get("CgroupnsMode") or ""
    if cgns not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {cgns}")
    v2 = cgroup_v2_host() if inp.cgroup_v2 is None else inp.cgroup_v2
    if cgns == "private" or (cgns == "" and v2):
        _set_ns(nss, "cgroup")
    return nss


def container_hostname(container_id: str, config: dict, host_config: dict) -> str:
    """Config.Hostname, else the host's name with host networking, else the short id (store it at create)."""
    if (config or {}).get("Hostname"):
        return config["Hostname"]
    if ((host_config or {}).get("NetworkMode") or "") == "host":
        return socket.gethostname()
    return container_id[:12]


def _hostname(inp: SpecInput) -> str:
    if inp.network_ns == "host" and not inp.config.get("Hostname"):
        return socket.gethostname()
    return container_hostname(inp.container_id, inp.config, inp.host_config)


def _sysctls(inp: SpecInput) -> dict[str, str]:
    mode = inp.host_config.get("NetworkMode") or ""
    out: dict[str, str] = {}
    if inp.config.get("Domainname"):  # dockerd sets the NIS domain name through this sysctl
        out["kernel.domainname"] = inp.config["Domainname"]
    if mode != "host" and not mode.startswith("container:") and inp.network_ns != "host":
        for key, value in _SYSCTL_DEFAULTS:
            if os.path.exists("/proc/sys/" + key.replace(".", "/")):
                out[key] = value
    out.update(inp.host_config.get("Sysctls") or {})
    return out


def _seccomp(inp: SpecInput, profile_opt: str, bounding: list[str]) -> dict | None:
    if profile_opt == "unconfined" or inp.host_config.get("Privileged"):
        return None
    if profile_opt:
        return to_oci(load_profile(profile_opt), bounding)
    if inp.seccomp_profile:
        return to_oci(load_profile(inp.seccomp_profile), bounding)
    return to_oci(default_profile(), bounding)


def _paths(hc: dict, key: str, defaults: tuple[str, ...]) -> list[str]:
    if hc.get(key) is not None:
        return list(hc[key])
    return [] if hc.get("Privileged") else list(defaults)


def _with_init(inp: SpecInput) -> bool:
    pid = inp.host_config.get("PidMode") or ""
    if not inp.host_config.get("Init") or pid == "host" or pid.startswith("container:"):
        return False
    if not inp.init_path:
        raise InvalidArgument('exec: "docker-init": executable file not found in $PATH')
    return True


def _mount_context(inp: SpecInput, with_init: bool) -> MountContext:
    hc = inp.host_config
    ipc = hc.get("IpcMode") or "private"
    return MountContext(
        shm_size=int(hc.get("ShmSize") or DEFAULT_SHM_SIZE), ipc_mode=ipc,
        shm_path=inp.shm_path or ("/dev/shm" if ipc == "host" else None),
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")), privileged=bool(hc.get("Privileged")),
        init_path=inp.init_path if with_init else None,
        network_files=((inp.resolv_conf_path, "/etc/resolv.conf"), (inp.hostname_path, "/etc/hostname"),
                       (inp.hosts_path, "/etc/hosts")))


def _linux(inp: SpecInput, bounding: list[str], seccomp_opt: str) -> dict:
    hc = inp.host_config
    devices, rules = container_devices(hc)
    resources = resources_to_oci(hc)
    resources["devices"] = rules
    linux: dict = {"namespaces": _namespaces(inp), "resources": resources, "cgroupsPath": inp.cgroups_path}
    # Empty lists and maps are left out, as in dockerd's config.json.
    for key, value in (("maskedPaths", _paths(hc, "MaskedPaths", MASKED_PATHS)),
                       ("readonlyPaths", _paths(hc, "ReadonlyPaths", READONLY_PATHS)),
                       ("devices", devices), ("sysctl", _sysctls(inp))):
        if value:
            linux[key] = value
    seccomp = _seccomp(inp, seccomp_opt, bounding)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    propagation = rootfs_propagation(inp.mounts)
    if propagation:
        linux["rootfsPropagation"] = propagation
    return linux


def build_spec(inp: SpecInput) -> dict:
    """The OCI runtime spec (config.json as a dict) for one container start."""
    hc = inp.host_config or {}
    config = dict(inp.config or {})
    config["Hostname"] = _hostname(inp)
    sec = parse_security_opts(hc.get("SecurityOpt"), inp.no_new_privileges)
    with_init = _with_init(inp)
    process = process_spec(config, hc, inp.rootfs, no_new_privileges=sec.no_new_privileges,
                           default_ulimits=inp.default_ulimits, with_init=with_init, link_env=inp.link_env)
    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs},
        "mounts": spec_mounts(inp.mounts, _mount_context(inp, with_init)),
        "linux": _linux(inp, process["capabilities"]["bounding"], sec.seccomp),
    }
    if hc.get("ReadonlyRootfs"):
        spec["root"]["readonly"] = True
    if hc.get("UTSMode") != "host":
        spec["hostname"] = config["Hostname"]
    return spec


__all__ = ["SpecInput", "build_spec", "adapt_host_config", "merge_image_config", "cgroup_v2_host", "container_hostname"]
