"""config.json of an OCI bundle: loading and validation (runtime spec 1.0 - 1.2).

The runtime works on the parsed dict itself (dataclasses would pull ``inspect``
onto the container start path, which is benchmarked); this module is where
every rule about the document lives, so nothing is created for a config that
cannot be applied.
"""

from __future__ import annotations

from . import jsonio
import os

from ..errors import InvalidArgument, NotFound

SUPPORTED_MAJOR = 1
SUPPORTED_MAX_MINOR = 2  # 1.0.x .. 1.2.x

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


def load_bundle(bundle: str) -> tuple[dict, str]:
    """Read and validate ``bundle``/config.json; return (spec, absolute rootfs path)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise NotFound("JSON specification file config.json not found", path=path) from None
    try:
        spec = jsonio.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"config.json: invalid JSON: {e}", path=path) from e
    if not isinstance(spec, dict):
        raise InvalidArgument("config.json: the document must be a JSON object", path=path)
    rootfs = validate(spec, bundle)
    return spec, rootfs


def validate(spec: dict, bundle: str) -> str:
    """Check every rule the runtime relies on; return the absolute rootfs path."""
    _check_version(spec.get("ociVersion"))
    process = spec.get("process")
    if process is not None:
        validate_process(process)
    root = spec.get("root")
    if not isinstance(root, dict) or not root.get("path"):
        raise InvalidArgument("root.path must be set")
    rootfs = root["path"]
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"rootfs ({rootfs!r}) does not exist", path=rootfs)
    linux = spec.get("linux") or {}
    if not isinstance(linux, dict):
        raise InvalidArgument("linux must be an object")
    types = _check_namespaces(linux.get("namespaces") or [])
    if (spec.get("hostname") or spec.get("domainname")) and "uts" not in types:
        raise InvalidArgument("unable to set hostname without a private UTS namespace")
    if (linux.get("uidMappings") or linux.get("gidMappings")) and "user" not in types:
        raise InvalidArgument("user namespaces aren't enabled in the config but uid/gid mappings are set")
    if "user" in types and types["user"] is None and not linux.get("uidMappings"):
        raise InvalidArgument("user namespaces enabled, but no user mapping found")
    for m in spec.get("mounts") or []:
        if not isinstance(m, dict) or not m.get("destination"):
            raise InvalidArgument("mount destination must be set")
    _check_sysctl(linux.get("sysctl") or {}, types)
    for p in (linux.get("maskedPaths") or []) + (linux.get("readonlyPaths") or []):
        if not isinstance(p, str) or not p.startswith("/"):
            raise InvalidArgument(f"masked and read-only paths must be absolute: {p!r}")
    _check_hooks(spec.get("hooks") or {})
    prop = linux.get("rootfsPropagation")
    if prop and prop not in ("shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"):
        raise InvalidArgument(f"invalid rootfsPropagation {prop!r}")
    if linux.get("seccomp"):
        from ..runtime import seccomp

        seccomp.validate(linux["seccomp"])
    return rootfs


def validate_process(process: dict) -> None:
    """Rules for ``process`` (also used for ``exec --process``)."""
    if not isinstance(process, dict):
        raise InvalidArgument("process property must not be empty")
    if not process.get("cwd"):
        raise InvalidArgument("Cwd property must not be empty")
    if not str(process["cwd"]).startswith("/"):
        raise InvalidArgument("Cwd must be an absolute path")
    args = process.get("args")
    if not args or not isinstance(args, list):
        raise InvalidArgument("args must not be empty")
    seen = set()
    for rl in process.get("rlimits") or []:
        kind = rl.get("type")
        if kind not in RLIMITS:
            raise InvalidArgument(f"wrong rlimit value: {kind}")
        if kind in seen:
            raise InvalidArgument(f"duplicate rlimit type {kind}")
        seen.add(kind)
    for entry in process.get("env") or []:
        if not isinstance(entry, str) or "=" not in entry and entry:
            pass  # runc passes such entries through unchanged


def _check_version(version: object) -> None:
    if not isinstance(version, str) or not version:
        raise InvalidArgument("ociVersion must be set")
    parts = version.split("-", 1)[0].split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise InvalidArgument(f"invalid ociVersion {version!r}") from None
    if major != SUPPORTED_MAJOR or minor > SUPPORTED_MAX_MINOR:
        raise InvalidArgument(
            f"unsupported ociVersion {version!r}: dockyard-runtime implements runtime spec 1.0 to 1.2")


def _check_namespaces(namespaces: list) -> dict:
    """Namespace type -> join path (None: create new). Rejects duplicates."""
    types: dict[str, str | None] = {}
    for ns in namespaces:
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind not in NAMESPACE_TYPES:
            raise InvalidArgument(f"namespace {kind!r} does not exist")
        if kind in types:
            raise InvalidArgument(f"malformed spec file: duplicated ns {kind!r}")
        path = ns.get("path") or None
        if path is not None and not os.path.exists(path):
            raise InvalidArgument(f"namespace path {path!r} for {kind} does not exist", path=path)
        types[kind] = path
    return types


def _check_sysctl(sysctl: dict, types: dict) -> None:
    ipc = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
           "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
    for key in sysctl:
        if key in ipc or key.startswith("fs.mqueue."):
            if "ipc" not in types:
                raise InvalidArgument(f"sysctl {key!r} is not allowed in the hosts ipc namespace")
        elif key.startswith("net."):
            if "network" not in types:
                raise InvalidArgument(f"sysctl {key!r} is not allowed in the hosts network namespace")
        elif key in ("kernel.domainname", "kernel.hostname"):
            if "uts" not in types:
                raise InvalidArgument(f"sysctl {key!r} is not allowed in the hosts uts namespace")
        else:
            raise InvalidArgument(f"sysctl {key!r} is not in a separate kernel namespace")


def _check_hooks(hooks: dict) -> None:
    for name, entries in hooks.items():
        if name not in HOOK_NAMES:
            continue
        for hook in entries or []:
            path = hook.get("path", "") if isinstance(hook, dict) else ""
            if not path.startswith("/"):
                raise InvalidArgument(f"hook {name}: path must be absolute, got {path!r}")
            timeout = hook.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
                raise InvalidArgument(f"hook {name}: timeout must be a positive integer")
