"""The spec's ``process``: args, env, user, cwd, capabilities, rlimits; and exec processes.

Also the create-time merge of the request's Config with the image config
(what dockerd stores as the container's Config).
"""

from __future__ import annotations

import copy
import os

from ....errors import InvalidArgument
from ....oci.runtime_spec import RLIMITS
from .defaults import DEFAULT_PATH_ENV, INIT_PATH_IN_CONTAINER, all_capabilities
from .security import capabilities_for, container_capabilities
from .users import path_in_rootfs, resolve_user

_HEALTH_FIELDS = ("Interval", "Timeout", "StartPeriod", "Retries")


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def _merge_env(user_env: list[str], image_env: list[str]) -> list[str]:
    """The request's Env, then the image's entries whose names it does not set."""
    if not user_env:
        return list(image_env)
    keys = {_env_key(e) for e in user_env}
    return list(user_env) + [e for e in image_env if _env_key(e) not in keys]


def _merge_healthcheck(user: dict | None, image: dict | None) -> dict | None:
    if not image:
        return user
    if user is None:
        return copy.deepcopy(image)
    merged = dict(user)
    if not merged.get("Test"):
        merged["Test"] = image.get("Test")
    for key in _HEALTH_FIELDS:
        if not merged.get(key):
            merged[key] = image.get(key, 0)
    return merged


def _merge_command(out: dict, image: dict) -> None:
    """Cmd from the image only without Entrypoint and Cmd; an explicit Entrypoint drops the image's Cmd."""
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = copy.deepcopy(image.get("Cmd"))
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = copy.deepcopy(image.get("Entrypoint"))
    out.setdefault("Cmd", None)
    out.setdefault("Entrypoint", None)
    if out.get("Entrypoint") == [""]:
        out["Entrypoint"] = None
    if not out.get("Entrypoint") and not out.get("Cmd"):
        raise InvalidArgument("No command specified")


def merge_image_config(config: dict, image_config: dict) -> dict:
    """dockerd's create-time merge of the request Config over the image config (a new dict).

    Like dockerd, Shell and OnBuild are not merged (they stay image-only).
    Raises ``No command specified`` when neither gives Entrypoint nor Cmd.
    """
    out = copy.deepcopy(config or {})
    image = image_config or {}
    if not out.get("User"):
        out["User"] = image.get("User", "")
    ports = dict(out.get("ExposedPorts") or {})
    for port in image.get("ExposedPorts") or {}:
        ports.setdefault(port, {})
    out["ExposedPorts"] = ports or None
    out["Env"] = _merge_env(out.get("Env") or [], image.get("Env") or [])
    labels = dict(image.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels
    _merge_command(out, image)
    health = _merge_healthcheck(out.get("Healthcheck"), image.get("Healthcheck"))
    if health is not None:
        out["Healthcheck"] = health
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir", "")
    volumes = dict(out.get("Volumes") or {})
    volumes.update(image.get("Volumes") or {})
    out["Volumes"] = volumes or None
    if not out.get("StopSignal"):
        out["StopSignal"] = image.get("StopSignal", "")
    return out


def replace_or_append_env(defaults: list[str], overrides: list[str]) -> list[str]:
    """Docker's env override: same name replaces, ``NAME`` alone unsets, others append."""
    env: list[str | None] = list(defaults)
    index = {_env_key(e): i for i, e in enumerate(defaults)}
    for value in overrides or []:
        if "=" not in value:
            if value in index:
                env[index[value]] = None
            continue
        key = _env_key(value)
        if key in index:
            env[index[key]] = value
        else:
            env.append(value)
    return [e for e in env if e is not None]


def daemon_env(config: dict, tty: bool, link_env: list[str] | None = None) -> list[str]:
    """PATH, HOSTNAME, (with a terminal) TERM and the --link variables, overridden by Config.Env."""
    env = ["PATH=" + DEFAULT_PATH_ENV, "HOSTNAME=" + (config.get("Hostname") or "")]
    if tty:
        env.append("TERM=xterm")
    env.extend(link_env or [])
    return replace_or_append_env(env, config.get("Env") or [])


def command_args(config: dict, with_init: bool = False) -> list[str]:
    """Entrypoint + Cmd (behind docker-init when --init)."""
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidArgument("No command specified")
    return [INIT_PATH_IN_CONTAINER, "--", *args] if with_init else args


def working_dir(path: str | None) -> str:
    """Config.WorkingDir (absolute) or "/"."""
    if not path:
        return "/"
    if not path.startswith("/"):
        raise InvalidArgument(f"the working directory '{path}' is invalid, it needs to be an absolute path")
    return path


def prepare_working_dir(rootfs: str, path: str | None) -> None:
    """Create Config.WorkingDir inside the rootfs (0755) if missing, as dockerd does at create/start."""
    if not path:
        return
    host = path_in_rootfs(rootfs, working_dir(path))
    if os.path.lexists(host) and not os.path.isdir(host):
        raise InvalidArgument(f"Cannot mkdir: {path} is not a directory")
    os.makedirs(host, 0o755, exist_ok=True)


def rlimits(ulimits: list[dict] | None, defaults: dict[str, tuple[int, int]] | None) -> list[dict]:
    """HostConfig.Ulimits, then the daemon's defaults for names not given, as RLIMIT_ entries."""
    merged = [(u.get("Name", ""), u.get("Soft", 0), u.get("Hard", 0)) for u in ulimits or []]
    given = {name for name, _s, _h in merged}
    merged += [(name, soft, hard) for name, (soft, hard) in sorted((defaults or {}).items()) if name not in given]
    out = []
    for name, soft, hard in merged:
        kind = "RLIMIT_" + name.upper()
        if kind not in RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        if soft > hard and hard != -1:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        out.append({"type": kind, "soft": soft & (2**64 - 1), "hard": hard & (2**64 - 1)})
    return out


def process_spec(config: dict, host_config: dict, rootfs: str, *, no_new_privileges: bool = False,
                 default_ulimits: dict[str, tuple[int, int]] | None = None, with_init: bool = False,
                 link_env: list[str] | None = None) -> dict:
    """OCI ``process`` for a container whose Config is already merged with the image's."""
    host_config = host_config or {}
    user = resolve_user(rootfs, config.get("User") or "", host_config.get("GroupAdd"))
    caps = container_capabilities(host_config.get("CapAdd"), host_config.get("CapDrop"),
                                  bool(host_config.get("Privileged")))
    proc: dict = {
        "user": user,
        "args": command_args(config, with_init),
        "env": daemon_env(config, bool(config.get("Tty")), link_env),
        "cwd": working_dir(config.get("WorkingDir")),
        "capabilities": capabilities_for(caps, user["uid"]),
        "oomScoreAdj": int(host_config.get("OomScoreAdj") or 0),
    }
    if config.get("Tty"):  # empty / false fields are left out, as dockerd's JSON does
        proc["terminal"] = True
    limits = rlimits(host_config.get("Ulimits"), default_ulimits)
    if limits:
        proc["rlimits"] = limits
    if no_new_privileges:
        proc["noNewPrivileges"] = True
    return proc


def exec_process(container_spec: dict, exec_config: dict, rootfs: str, *,
                 container_config: dict | None = None, host_config: dict | None = None,
                 link_env: list[str] | None = None) -> dict:
    """OCI ``process`` for ``docker exec``: the container's process with the exec's overrides.

    Inherits capabilities, rlimits, noNewPrivileges, apparmor/selinux and
    oomScoreAdj. Env is the container's daemon env for the exec's Tty with
    the exec's Env over it; User and WorkingDir default to the container's.
    Pass ``container_config`` (the stored Config) for exact env/user defaults.
    """
    proc = copy.deepcopy(container_spec.get("process") or {})
    args = list(exec_config.get("Cmd") or [])
    if not args:
        raise InvalidArgument("No exec command specified")
    tty = bool(exec_config.get("Tty"))
    if container_config is not None:
        base_env = daemon_env(container_config, tty, link_env)
    else:
        base_env = [e for e in proc.get("env") or [] if e != "TERM=xterm"] + (["TERM=xterm"] if tty else [])
    proc.update(args=args, env=replace_or_append_env(base_env, exec_config.get("Env") or []))
    if tty:
        proc["terminal"] = True
    else:
        proc.pop("terminal", None)
    fallback = container_config or {}
    if exec_config.get("WorkingDir") or container_config is not None:
        proc["cwd"] = working_dir(exec_config.get("WorkingDir") or fallback.get("WorkingDir"))
    proc["cwd"] = proc.get("cwd") or "/"
    user = exec_config.get("User") or fallback.get("User") or ""
    if user:
        proc["user"] = resolve_user(rootfs, user, (host_config or {}).get("GroupAdd"))
    if exec_config.get("Privileged"):
        every = all_capabilities()
        proc["capabilities"] = {"bounding": every, "permitted": every, "effective": every}
    proc.pop("consoleSize", None)
    return proc
