"""Starting a container (rootfs, volumes, /etc files, OCI spec, shim) and tearing a run down.

The start sequence, in order: mount the rootfs snapshot, mount volumes (copying image content
into an empty volume on first use), write hostname/hosts/resolv.conf, write the OCI bundle
(config.json + shim.json), spawn the shim (which runs `runtime create`), connect attachers
that were waiting, then `start`. Any failure undoes what was done, in reverse.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon.containers import etcfiles
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.flags import parse_size
from dockyard.engine.daemon.spec import SpecInput, build_spec
from dockyard.engine.daemon.spec.mounts import MountPoint, prepare_bind_sources
from dockyard.engine.daemon.spec.process import prepare_working_dir
from dockyard.kernel.mount import is_mountpoint
from dockyard.supervisor.snapshots import mount_all, unmount_all

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

INIT_CANDIDATES = ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/sbin/tini-static")


def init_binary() -> str | None:
    return next((p for p in INIT_CANDIDATES if os.path.exists(p)), None)


class Paths:
    """Where one container's files live."""

    def __init__(self, daemon: Daemon, c: Container) -> None:
        self.dir = daemon.containers.store.dir(c.id)
        self.rootfs = os.path.join(self.dir, "rootfs")
        self.bundle = os.path.join(daemon.config.exec_root, c.id)
        self.socket = os.path.join(daemon.config.exec_root, "s", c.id[:24])
        self.exit_file = os.path.join(self.dir, "exit.json")
        self.log = os.path.join(self.dir, f"{c.id}-json.log")


def mount_rootfs(daemon: Daemon, c: Container, paths: Paths) -> None:
    """Blocking: mount the container's snapshot at paths.rootfs (idempotent)."""
    os.makedirs(paths.rootfs, exist_ok=True)
    if is_mountpoint(paths.rootfs):
        return
    mounts = daemon.images.snapshotter(daemon.snapshotter_name).mounts(c.snapshot_key)
    mount_all(mounts, paths.rootfs)


def unmount_rootfs(paths: Paths) -> None:
    """Blocking: unmount the rootfs if mounted (lazily if busy)."""
    try:
        unmount_all(paths.rootfs, detach=True)
    except OSError:
        pass


def shim_config(daemon: Daemon, c: Container, paths: Paths) -> dict[str, Any]:
    log_config = c.host_config.get("LogConfig") or {}
    opts = log_config.get("Config") or {}
    runtime = daemon.runtime(c.runtime)
    return {
        "id": c.id, "runtime": runtime.path,
        "runtime_args": [*runtime.global_args, "--log", os.path.join(paths.bundle, "log.json"), "--log-format", "json"],
        "socket": paths.socket, "tty": bool(c.config.get("Tty")), "open_stdin": bool(c.config.get("OpenStdin")),
        "stdin_once": bool(c.config.get("StdinOnce")),
        "log": {"driver": log_config.get("Type") or "json-file", "path": paths.log,
                "max_size": parse_size(opts["max-size"]) if opts.get("max-size") else 0,
                "max_file": int(opts.get("max-file") or 1)},
        "exit_file": paths.exit_file, "console_size": c.host_config.get("ConsoleSize") or None,
    }


def build_bundle(daemon: Daemon, c: Container, paths: Paths, mounts: list[MountPoint],
                 network_ns: str | None = None, net: etcfiles.NetFiles = etcfiles.NetFiles(),
                 shared_files: dict[str, str] | None = None, link_env: list[str] | None = None) -> None:
    """Blocking: /etc files, config.json and shim.json in the bundle directory.

    network_ns: None for a new namespace made by the runtime, "host", or a namespace file to join.
    shared_files: the hostname/hosts/resolv.conf paths of the container whose network this one joins.
    """
    host_net = network_ns == "host"
    if shared_files:
        c.paths.update(shared_files)
    else:
        c.paths.update(etcfiles.write_all(paths.dir, c.config, c.host_config, host_net, net))
    c.paths["LogPath"] = paths.log if (c.host_config.get("LogConfig") or {}).get("Type") != "none" else ""
    prepare_bind_sources(mounts)
    prepare_working_dir(paths.rootfs, c.config.get("WorkingDir"))
    parent = c.host_config.get("CgroupParent") or daemon.config.cgroup_parent
    image_config = _image_config(daemon, c)
    spec = build_spec(SpecInput(
        container_id=c.id, config=c.config, host_config=c.host_config, image_config=image_config,
        rootfs=paths.rootfs, mounts=mounts, hostname_path=c.paths["HostnamePath"], hosts_path=c.paths["HostsPath"],
        resolv_conf_path=c.paths["ResolvConfPath"], network_ns=network_ns,
        cgroups_path=f"{parent.rstrip('/')}/{c.id}", default_ulimits=dict(daemon.config.default_ulimits),
        init_path=init_binary() if c.host_config.get("Init") else None, link_env=list(link_env or [])))
    shutil.rmtree(paths.bundle, ignore_errors=True)
    os.makedirs(paths.bundle, mode=0o711)
    for name, doc in (("config.json", spec), ("shim.json", shim_config(daemon, c, paths))):
        with open(os.path.join(paths.bundle, name), "w") as f:
            json.dump(doc, f)


def _image_config(daemon: Daemon, c: Container) -> dict[str, Any]:
    try:
        return dict(json.loads(daemon.images.content.read(c.image_id)).get("config") or {})
    except Exception:  # the image may be gone (removed with -f); the record has the merged config
        return {}


def remove_bundle(paths: Paths) -> None:
    shutil.rmtree(paths.bundle, ignore_errors=True)
    try:
        os.unlink(paths.socket)
    except OSError:
        pass
