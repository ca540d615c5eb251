"""`POST /containers/create`: validate the body and build a container record.

Everything that can be wrong with the request is found here, before anything is written:
name, image, runtime, log driver, restart policy, network mode, mounts.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon import names
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.networking.endpoints import check_static_ip
from dockyard.engine.daemon.spec import adapt_host_config, merge_image_config, validate_resources
from dockyard.engine.daemon.spec.build import container_hostname
from dockyard.engine.daemon.spec.mounts import MountPoint, parse_bind, parse_mounts
from dockyard.engine.daemon.timefmt import now_rfc3339
from dockyard.errors import DockyardError, InvalidArgument

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
               "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
               "StopTimeout", "Shell")
LOG_DRIVERS = ("json-file", "none")
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def split_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Config, HostConfig, NetworkingConfig) of a create body."""
    if not any(k in body for k in CONFIG_KEYS):
        raise InvalidArgument("Config cannot be empty in order to create a container")
    config = {k: copy.deepcopy(body[k]) for k in CONFIG_KEYS if k in body}
    host_config = copy.deepcopy(body.get("HostConfig") or {})
    networking = copy.deepcopy(body.get("NetworkingConfig") or {})
    for key, kind, go_type in (("Env", list, "[]string"), ("Cmd", list, "string"), ("Entrypoint", list, "string"),
                               ("Labels", dict, "map[string]string")):
        value = config.get(key)
        if isinstance(value, str) and key in ("Cmd", "Entrypoint"):
            config[key] = [value]
        elif value is not None and not isinstance(value, kind):
            raise _unmarshal_error(value, f"ContainerConfigWrapper.{key}", go_type)
    for key in ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit", "ShmSize"):
        value = host_config.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _unmarshal_error(value, f"HostConfig.HostConfig.{key}", "int64")
    return config, host_config, networking


def _unmarshal_error(value: object, field: str, go_type: str) -> DockyardError:
    """dockerd 20.10's answer to a body field of the wrong JSON type: Go's decoder error, as a 500."""
    kind = {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "value")
    return DockyardError(f"json: cannot unmarshal {kind} into Go struct field {field} of type {go_type}")


def check_host_config(daemon: Daemon, hc: dict[str, Any]) -> None:
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    log_type = (hc.get("LogConfig") or {}).get("Type") or "json-file"
    if log_type not in LOG_DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{log_type}' is registered")
    runtime = hc.get("Runtime") or daemon.config.default_runtime
    if runtime not in daemon.config.runtimes:
        raise InvalidArgument(f"Unknown runtime specified {runtime}")
    # An unknown network is accepted here and refused at start, as dockerd 20.10 does.
    if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    memory, swap = int(hc.get("Memory") or 0), int(hc.get("MemorySwap") or 0)
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage for details")


def normalize_host_config(daemon: Daemon, hc: dict[str, Any]) -> dict[str, Any]:
    """Defaults dockerd fills in, so inspect shows the same values."""
    hc.setdefault("NetworkMode", "default")
    if not hc.get("NetworkMode"):
        hc["NetworkMode"] = "default"
    hc["LogConfig"] = {"Type": (hc.get("LogConfig") or {}).get("Type") or "json-file",
                       "Config": (hc.get("LogConfig") or {}).get("Config") or {}}
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    if not hc["RestartPolicy"].get("Name"):
        hc["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    hc["Runtime"] = hc.get("Runtime") or daemon.config.default_runtime
    hc.setdefault("ShmSize", daemon.config.default_shm_size)
    if not hc.get("ShmSize"):
        hc["ShmSize"] = daemon.config.default_shm_size
    hc.setdefault("Binds", None)
    hc.setdefault("Privileged", False)
    hc.setdefault("ReadonlyRootfs", False)
    hc.setdefault("AutoRemove", False)
    hc.setdefault("CapAdd", None)
    hc.setdefault("CapDrop", None)
    hc.setdefault("KernelMemory", 0)
    hc.setdefault("KernelMemoryTCP", 0)
    if hc.get("MemorySwappiness") in (None, -1):
        hc["MemorySwappiness"] = None
    if not hc.get("PidsLimit") or hc["PidsLimit"] <= 0:  # unlimited is stored as null, like dockerd
        hc["PidsLimit"] = None
    return hc


def network_endpoints(daemon: Daemon, config: dict[str, Any], hc: dict[str, Any],
                      endpoints: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The EndpointsConfig to record (keyed by network name), after dockerd's checks; and warnings."""
    mode = hc.get("NetworkMode") or "default"
    if mode.startswith("container:"):
        ref = mode[len("container:"):]
        if not ref:
            raise InvalidArgument("Invalid network mode: invalid container format container:<name|id>")
        try:
            daemon.containers.get(ref)
        except DockyardError as e:  # dockerd: not a 404 here (a 404 would make the CLI try to pull the image)
            raise InvalidArgument(str(e)) from None
        for present, what in ((config.get("Hostname"), "hostname"), (config.get("MacAddress"), "mac-address"),
                              (hc.get("PortBindings") or hc.get("PublishAllPorts"), "port publishing"),
                              (hc.get("Dns"), "dns"), (hc.get("ExtraHosts"), "custom host-to-IP mapping"),
                              (hc.get("Links"), "links")):
            if present:
                if what == "port publishing":
                    raise InvalidArgument("conflicting options: port publishing and the container type network mode")
                raise InvalidArgument(f"conflicting options: {what} and the network mode")
        return {}, []
    warnings = []
    if mode == "host" and hc.get("Links"):
        raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                              "This would result in undefined behavior")
    if mode == "host" and (hc.get("PortBindings") or hc.get("PublishAllPorts")):
        warnings.append("Published ports are discarded when using host network mode")
    if len(endpoints) > 1:
        raise InvalidArgument("Container cannot be connected to network endpoints: " + ", ".join(endpoints))
    name = "bridge" if mode == "default" else mode
    key = name
    try:
        net = daemon.networks.by_mode(mode)
        key = net.name if net is not None else name
    except DockyardError:
        net = None
    cfg = dict(next(iter(endpoints.values())) if endpoints else {})
    if (cfg.get("IPAMConfig") or {}).get("IPv4Address") and key == "bridge":
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    if net is not None:
        for key_ in ("IPv4Address", "IPv6Address"):
            check_static_ip(net, str((cfg.get("IPAMConfig") or {}).get(key_) or ""))
    if hc.get("Links") and key not in ("bridge", "host", "none"):
        cfg["Links"] = list(hc["Links"])  # on a user-defined network a link is a DNS alias of this container
    return {key: cfg}, warnings


def legacy_links(daemon: Daemon, name: str, hc: dict[str, Any]) -> None:
    """--link on the default bridge: check the targets and record "/target:/name/alias" as dockerd does."""
    if not hc.get("Links") or (hc.get("NetworkMode") or "default") not in ("default", "bridge"):
        return
    out = []
    for link in hc["Links"]:
        target, _, alias = str(link).partition(":")
        target = target.lstrip("/")
        try:
            child = daemon.containers.get(target)
        except DockyardError as e:
            raise InvalidArgument(f"could not get container for {target}: {e}") from None
        alias = (alias or target).rsplit("/", 1)[-1]
        out.append(f"{child.name}:{name}/{alias}")
    hc["Links"] = out


def pick_name(daemon: Daemon, requested: str) -> str:
    if requested:
        full = names.validate_name(requested)
        daemon.containers.store.reserve_check(full)
        return full
    return "/" + names.random_name(daemon.containers.store.name_taken)  # random_name gives a bare name


def mount_point_json(m: MountPoint) -> dict[str, Any]:
    """A Mounts[] entry of inspect."""
    d: dict[str, Any] = {"Type": m.type}
    if m.type == "volume":
        d["Name"] = m.name
    d.update({"Source": m.source, "Destination": m.destination})
    if m.type == "volume":
        d["Driver"] = m.driver or "local"
    d.update({"Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
    return d


async def build_container(daemon: Daemon, cid: str, name: str,
                          body: dict[str, Any]) -> tuple[Container, list[MountPoint], list[str]]:
    config, hc, networking = split_body(body)
    image_ref = config.get("Image") or ""
    if not image_ref:
        raise InvalidArgument("No command specified" if not config.get("Cmd") else "Config.Image is empty")
    check_host_config(daemon, hc)
    warnings = validate_resources(hc)
    resolved = await daemon.run_blocking(daemon.images.resolve, image_ref)
    image_doc = await daemon.run_blocking(daemon.images.content.read, resolved.config_digest)
    import json
    image_config = (json.loads(image_doc).get("config") or {})
    merged = merge_image_config(config, image_config)
    merged["Image"] = image_ref
    if not (merged.get("Entrypoint") or merged.get("Cmd")):
        raise InvalidArgument("No command specified")
    for bind in hc.get("Binds") or []:  # dockerd 20.10 answers a bad -v string with a 500
        try:
            parse_bind(bind)
        except InvalidArgument as e:
            raise DockyardError(str(e)) from None
    mounts = parse_mounts(merged, hc)
    endpoints, net_warnings = network_endpoints(daemon, config, hc, networking.get("EndpointsConfig") or {})
    legacy_links(daemon, name, hc)
    warnings = list(warnings or []) + net_warnings
    hc = normalize_host_config(daemon, adapt_host_config(hc, shm_size=daemon.config.default_shm_size))
    argv = list(merged.get("Entrypoint") or []) + list(merged.get("Cmd") or [])
    merged["Hostname"] = container_hostname(cid, merged, hc)
    for key, default in (("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
                         ("AttachStderr", False), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
                         ("Env", None), ("Cmd", None), ("Image", image_ref), ("Volumes", None), ("WorkingDir", ""),
                         ("Entrypoint", None), ("OnBuild", None), ("Labels", {})):
        merged.setdefault(key, default)
    if merged["Labels"] is None:
        merged["Labels"] = {}
    c = Container(id=cid, name=name, created=now_rfc3339(), image_id=resolved.config_digest, image_ref=image_ref,
                  config=merged, host_config=hc, path=argv[0], args=argv[1:],
                  driver="vfs" if daemon.config.storage_driver == "vfs" else "overlay2",
                  runtime=hc["Runtime"], networking=endpoints)
    return c, mounts, warnings
