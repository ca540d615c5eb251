"""``--change`` instructions of `docker import` / `docker commit`, applied to an image config.

Supported, as Docker does: CMD, ENTRYPOINT (JSON or shell form), ENV (k=v ... or "k v"), WORKDIR,
USER, LABEL (k=v ...), EXPOSE (port[/proto] ...), VOLUME (JSON or words), STOPSIGNAL, ONBUILD.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

from dockyard.errors import InvalidArgument

_Apply = Callable[[dict[str, Any], str], None]


def _exec_form(arg: str) -> list[str]:
    if arg.lstrip().startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", arg]


def _pairs(arg: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(arg)
    if len(words) >= 2 and "=" not in words[0]:  # legacy "ENV key value with spaces"
        return [(words[0], arg.split(None, 1)[1].strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{what}: expected key=value, got {w!r}")
        out.append((key, value))
    return out


def _env(config: dict[str, Any], arg: str) -> None:
    env = [e for e in config.get("Env") or []]
    for key, value in _pairs(arg, "ENV"):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _label(config: dict[str, Any], arg: str) -> None:
    config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs(arg, "LABEL"))}


def _expose(config: dict[str, Any], arg: str) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for p in arg.split():
        ports[p if "/" in p else f"{p}/tcp"] = {}
    config["ExposedPorts"] = ports


def _volume(config: dict[str, Any], arg: str) -> None:
    stripped = arg.strip()
    paths = json.loads(stripped) if stripped.startswith("[") else stripped.split()
    config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}


def _setter(key: str, convert: Callable[[str], Any] = str.strip) -> _Apply:
    def apply(config: dict[str, Any], arg: str) -> None:
        config[key] = convert(arg)
    return apply


def _onbuild(config: dict[str, Any], arg: str) -> None:
    config["OnBuild"] = [*(config.get("OnBuild") or []), arg.strip()]


_INSTRUCTIONS: dict[str, _Apply] = {
    "CMD": _setter("Cmd", _exec_form), "ENTRYPOINT": _setter("Entrypoint", _exec_form), "ENV": _env,
    "WORKDIR": _setter("WorkingDir"), "USER": _setter("User"), "LABEL": _label, "EXPOSE": _expose,
    "VOLUME": _volume, "STOPSIGNAL": _setter("StopSignal"), "ONBUILD": _onbuild,
}


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the container ``config`` (the image config's "config") with ``changes`` applied."""
    out = dict(config)
    for change in changes:
        keyword, _, arg = change.strip().partition(" ")
        apply = _INSTRUCTIONS.get(keyword.upper())
        if apply is None:
            raise InvalidArgument(f"{keyword} is not a valid change command (allowed: "
                                  f"{', '.join(sorted(_INSTRUCTIONS))})")
        if not arg.strip():
            raise InvalidArgument(f"{keyword.upper()} needs an argument")
        apply(out, arg.strip())
    return out
