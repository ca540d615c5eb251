"""HostConfig.Binds / Mounts / Tmpfs and Config.Volumes -> resolved MountPoints.

Validation and messages follow moby's linux volume parser (20.10): ``-v``
strings are parsed without checking the bind source (the daemon creates it
at start, see prepare_bind_sources), ``--mount`` entries are checked strictly.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from ....errors import InvalidArgument

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass(frozen=True)
class MountPoint:
    """One resolved mount the container gets (volume sources filled in by the daemon)."""

    type: str  # "bind" | "volume" | "tmpfs"
    source: str  # host path ("" for tmpfs, and for volumes until the daemon resolves them)
    destination: str
    rw: bool = True
    propagation: str = ""
    name: str = ""  # volume name; "" for an anonymous volume the daemon must name
    driver: str = ""
    mode: str = ""  # the raw mode string as Docker shows it in Mounts[].Mode
    copy_data: bool = True
    tmpfs_options: tuple[str, ...] = ()
    non_recursive: bool = False
    create_source: bool = False  # a -v bind: create a missing source directory at start
    listed: bool = True  # shown in inspect's Mounts (HostConfig.Tmpfs entries are not)


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def _mount_error(kind: str, detail: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{kind}": {detail}')


def _check_target(target: str) -> str | None:
    """The error text for a bad container path, or None."""
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        return "invalid specification: destination can't be '/'"
    if not posixpath.isabs(target.replace("\\", "/")):
        return f"invalid mount path: '{target}' mount path must be absolute"
    return None


def valid_mode(mode: str) -> bool:
    """Whether a -v mode string ("ro,z,rshared,nocopy") is well formed."""
    if mode == "":
        return True
    counts = [0, 0, 0, 0, 0]
    for opt in mode.split(","):
        for i, group in enumerate((_RW_MODES, _LABEL_MODES, PROPAGATIONS, _COPY_MODES, _CONSISTENCY_MODES)):
            if opt in group:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


def _mode_propagation(mode: str) -> str:
    return next((o for o in mode.split(",") if o in PROPAGATIONS), "")


def validate_volume_name(name: str) -> None:
    """The local driver's volume name rule (Docker checks it when creating the volume)."""
    if len(name) == 1:
        raise InvalidArgument(
            f"create {name}: volume name is too short, names should be at least two alphanumeric characters")
    if not _VOLUME_NAME.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')


def tmpfs_options_from(opts: dict | None, read_only: bool) -> tuple[str, ...]:
    """TmpfsOptions{SizeBytes, Mode} -> ("ro", "mode=1777", "size=64m") as Docker words them."""
    out: list[str] = ["ro"] if read_only else []
    opts = opts or {}
    if opts.get("Mode"):
        out.append(f"mode={int(opts['Mode']):o}")
    size = int(opts.get("SizeBytes") or 0)
    if size:
        for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                out.append(f"size={size // div}{suffix}")
                break
        else:
            out.append(f"size={size}")
    return tuple(out)


def _validate_mount(m: dict, check_source: bool) -> None:
    """moby's validateMountConfig for one HostConfig.Mounts entry."""
    kind = m.get("Type") or ""
    target = m.get("Target") or ""
    source = m.get("Source") or ""
    if not target:
        raise _mount_error(kind, "field Target must not be empty")
    problem = _check_target(target)
    if problem:
        raise _mount_error(kind, problem)
    if kind == "bind":
        if not source:
            raise _mount_error(kind, "field Source must not be empty")
        prop = (m.get("BindOptions") or {}).get("Propagation") or ""
        if prop and prop not in PROPAGATIONS:
            raise _mount_error(kind, f"invalid propagation mode: {prop}")
        if m.get("VolumeOptions") is not None:
            raise _mount_error(kind, "field VolumeOptions must not be specified")
        if not posixpath.isabs(source):
            raise _mount_error(kind, f"invalid mount path: '{source}' mount path must be absolute")
        if check_source and not os.path.lexists(source):
            raise _mount_error(kind, f"bind source path does not exist: {source}")
    elif kind == "volume":
        if m.get("BindOptions") is not None:
            raise _mount_error(kind, "field BindOptions must not be specified")
        if not source and m.get("ReadOnly"):
            raise _mount_error(kind, "must not set ReadOnly mode when using anonymous volumes")
    elif kind == "tmpfs":
        if m.get("BindOptions") is not None:
            raise _mount_error(kind, "field BindOptions must not be specified")
        if source:
            raise _mount_error(kind, "field Source must not be specified")
    else:
        raise _mount_error(kind, "mount type unknown")


def _from_spec(m: dict, check_source: bool, mode: str = "", from_bind: bool = False) -> MountPoint:
    _validate_mount(m, check_source)
    kind = m["Type"]
    dest = posixpath.normpath(m["Target"])
    rw = not m.get("ReadOnly")
    if kind == "bind":
        bopts = m.get("BindOptions") or {}
        return MountPoint("bind", posixpath.normpath(m["Source"]), dest, rw,
                          propagation=bopts.get("Propagation") or DEFAULT_PROPAGATION, mode=mode,
                          non_recursive=bool(bopts.get("NonRecursive")), create_source=from_bind)
    if kind == "volume":
        vopts = m.get("VolumeOptions") or {}
        name = m.get("Source") or ""
        if name:
            validate_volume_name(name)
        driver = (vopts.get("DriverConfig") or {}).get("Name") or "local"
        return MountPoint("volume", "", dest, rw, name=name, driver=driver, mode=mode or "z",
                          copy_data=not vopts.get("NoCopy"))
    return MountPoint("tmpfs", "", dest, rw, mode=mode,
                      tmpfs_options=tmpfs_options_from(m.get("TmpfsOptions"), bool(m.get("ReadOnly"))))


def parse_bind(raw: str, volume_driver: str = "") -> MountPoint:
    """One ``-v`` string (``src:dst[:opts]``, ``name:dst``, ``/dst``) as moby's ParseMountRaw."""
    if raw.count(":") > 2 or raw.split(":", 1)[0] == "":
        raise InvalidArgument(_invalid_spec(raw))
    parts = raw.split(":", 2)
    mode = ""
    spec: dict = {}
    if len(parts) == 1:
        spec["Target"] = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise InvalidArgument(_invalid_spec(raw))  # "/foo:rw": a destination with a mode
        spec["Source"], spec["Target"] = parts
    else:
        spec["Source"], spec["Target"], mode = parts
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    source = spec.get("Source", "")
    spec["Type"] = "bind" if posixpath.isabs(source) else "volume"
    spec["ReadOnly"] = "ro" in mode.split(",")
    if volume_driver and spec["Type"] == "volume":
        spec["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    if "nocopy" in mode.split(","):
        spec.setdefault("VolumeOptions", {})["NoCopy"] = True
    if _mode_propagation(mode):
        spec["BindOptions"] = {"Propagation": _mode_propagation(mode)}
    try:
        return _from_spec(spec, check_source=False, mode=mode, from_bind=True)
    except InvalidArgument as e:
        if e.message.startswith("create "):
            raise
        raise InvalidArgument(f"{_invalid_spec(raw)}: {e.message}") from None


def parse_mounts(config: dict, host_config: dict) -> list[MountPoint]:
    """All mounts of a container create request, in the order binds, mounts, tmpfs, volumes."""
    config = config or {}
    host_config = host_config or {}
    tmpfs = host_config.get("Tmpfs") or {}
    out: dict[str, MountPoint] = {}
    for raw in host_config.get("Binds") or []:
        mp = parse_bind(raw, host_config.get("VolumeDriver") or "")
        if mp.destination in out or mp.destination in tmpfs:
            raise InvalidArgument(f"Duplicate mount point: {mp.destination}")
        out[mp.destination] = mp
    for m in host_config.get("Mounts") or []:
        if not isinstance(m, dict):
            raise InvalidArgument("invalid mount config: each Mounts entry must be an object")
        mp = _from_spec(m, check_source=True)
        if mp.destination in out:
            raise InvalidArgument(f"Duplicate mount point: {m.get('Target')}")
        out[mp.destination] = mp
    for dest, data in tmpfs.items():
        problem = _check_target(dest)
        if problem:
            raise InvalidArgument(problem)
        clean = posixpath.normpath(dest)
        out[clean] = MountPoint("tmpfs", "", clean, tmpfs_options=tuple(o for o in (data or "").split(",") if o),
                                listed=False)
    for dest in sorted(config.get("Volumes") or {}):
        problem = _check_target(dest)
        if problem:
            raise InvalidArgument(problem)
        clean = posixpath.normpath(dest)
        if clean not in out:
            out[clean] = MountPoint("volume", "", clean, name="", driver=host_config.get("VolumeDriver") or "local")
    return list(out.values())


def prepare_bind_sources(mounts: list[MountPoint]) -> None:
    """Create missing ``-v`` bind sources as directories (0755), as dockerd does at start."""
    for m in mounts:
        if m.type == "bind" and m.create_source and not os.path.lexists(m.source):
            try:
                os.makedirs(m.source, 0o755, exist_ok=True)
            except OSError as e:
                raise InvalidArgument(
                    f"error while creating mount source path '{m.source}': {e.strerror}", path=m.source) from e
