"""linux.devices and the device cgroup rules: HostConfig.Devices, DeviceCgroupRules, --privileged.

Device nodes are described from the host node (stat), as dockerd does; a
directory maps every device below it.
"""

from __future__ import annotations

import os
import re
import stat

from ....errors import InvalidArgument
from .defaults import default_device_rules

_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_SKIP_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")


def _describe(path: str, in_container: str, perms: str) -> tuple[dict, dict] | None:
    """(linux.devices entry, cgroup rule) for a host node, None if not a device."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISBLK(st.st_mode):
        kind = "b"
    elif stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISFIFO(st.st_mode):
        kind = "p"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    dev = {"path": in_container, "type": kind, "major": major, "minor": minor,
           "fileMode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}
    return dev, {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}


def devices_from_path(on_host: str, in_container: str, perms: str) -> tuple[list[dict], list[dict]]:
    """One ``--device host[:container[:perms]]`` mapping (a directory maps all devices in it)."""
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    found = _describe(resolved, in_container, perms)
    if found:
        return [found[0]], [found[1]]
    devs: list[dict] = []
    rules: list[dict] = []
    if os.path.isdir(resolved):
        for root, _dirs, files in os.walk(resolved):
            for name in sorted(files):
                full = os.path.join(root, name)
                child = _describe(full, full.replace(resolved, in_container, 1), perms)
                if child:
                    devs.append(child[0])
                    rules.append(child[1])
    if not devs:
        reason = "not a device node" if os.path.exists(resolved) else "no such file or directory"
        raise InvalidArgument(
            f'error gathering device information while adding custom device "{on_host}": {reason}')
    return devs, rules


def host_devices(root: str = "/dev") -> list[dict]:
    """Every char/block device under /dev (not pts, shm, ... nor console): what --privileged gets."""
    out: list[dict] = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        full = os.path.join(root, name)
        if os.path.isdir(full) and not os.path.islink(full):
            if name not in _SKIP_DIRS:
                out += host_devices(full)
            continue
        if name == "console":
            continue
        found = _describe(full, full, "rwm")
        if found and found[0]["type"] != "p":
            out.append(found[0])
    return out


def parse_cgroup_rule(rule: str) -> dict:
    """``c 1:3 rwm`` / ``b *:* m`` -> an OCI device cgroup rule (``*`` is -1, as dockerd writes)."""
    m = _RULE.match(rule)
    if not m:
        raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'")
    kind, major, minor, access = m.groups()
    return {"allow": True, "type": kind, "major": -1 if major == "*" else int(major),
            "minor": -1 if minor == "*" else int(minor), "access": access}


def container_devices(host_config: dict) -> tuple[list[dict], list[dict]]:
    """(linux.devices, linux.resources.devices) for a container."""
    mappings = host_config.get("Devices") or []
    if host_config.get("Privileged"):
        devs = host_devices()
        for d in mappings:
            if d.get("PathOnHost") != d.get("PathInContainer"):
                devs += devices_from_path(d["PathOnHost"], d["PathInContainer"], "rwm")[0]
        return devs, [{"allow": True, "access": "rwm"}]
    devs, rules = [], default_device_rules()
    for d in mappings:
        more, more_rules = devices_from_path(d["PathOnHost"], d.get("PathInContainer") or d["PathOnHost"],
                                             d.get("CgroupPermissions") or "rwm")
        devs += more
        rules += more_rules
    rules += [parse_cgroup_rule(r) for r in host_config.get("DeviceCgroupRules") or []]
    return devs, rules
