"""Volumes of the ``local`` driver, laid out as dockerd does: ``<data-root>/volumes/<name>/_data``.

Each volume's metadata (driver, labels, options, creation time) is a JSON file next to its
``_data``; a volume is created in a hidden temp directory and renamed into place, and metadata
updates are written tmp + fsync + rename, so a kill -9 leaves either no volume or a whole one.
A directory with ``_data`` but no metadata (dockerd's own leftovers) still counts as a volume.
Options ``type``/``device``/``o`` (``--opt type=tmpfs --opt device=tmpfs --opt o=size=10m``) are
mounted with mount(2) on the first container mount and unmounted after the last.
Synchronous: the daemon calls it through ``run_blocking``. Messages are dockerd 20.10's.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.engine.daemon import filters as flt
from dockyard.kernel.mount import is_mountpoint as is_mount_point
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.supervisor.snapshots.copy import copy_tree

DRIVER = "local"
META = "volume.json"
LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})  # "all" (API 1.42): accepted, 20.10 prunes all
LOCAL_OPTIONS = frozenset({"type", "device", "o"})
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
Emit = Callable[[str, str, dict[str, str]], None]  # (action, volume name, attributes) of a "volume" event


@dataclass(frozen=True)
class _DeviceMount:
    """A local volume's device mount, in the shape dockyard.kernel.mount takes."""

    type: str
    source: str
    options: tuple[str, ...]


def rfc3339_seconds(ts: float) -> str:
    """Go's time.RFC3339 in local time, as 20.10 prints a volume's CreatedAt ("Z" in UTC)."""
    text = datetime.datetime.fromtimestamp(int(ts)).astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def validate_name(name: str) -> None:
    """The local driver's name rule (at least two characters, no path separators)."""
    if len(name) == 1:
        raise InvalidArgument(f"create {name}: volume name is too short, names should be at least two "
                              "alphanumeric characters")
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                              'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                              "directory, use absolute path")


def _write_json(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{secrets.token_hex(4)}"
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dir_size(path: str) -> int:
    """Bytes used by the files under ``path`` (hard links counted once, like dockerd's du)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _daemon_users(daemon: Any) -> Callable[[str], builtins.list[str]]:
    def users(name: str) -> builtins.list[str]:
        containers = getattr(daemon, "containers", None)
        return list(containers.volume_users(name)) if containers is not None else []
    return users


def _daemon_emitter(daemon: Any) -> Emit:
    """Volume events onto the daemon's bus, from the loop thread or a worker thread.

    The bus is not thread-safe: from a worker, events go through ``call_soon_threadsafe`` on
    ``daemon.loop`` if set, else on the loop running when the service was built.
    """
    try:
        built_on: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        built_on = None

    def emit(action: str, name: str, attrs: dict[str, str]) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loop = getattr(daemon, "loop", None) or built_on
            if loop is not None and loop.is_running():
                loop.call_soon_threadsafe(daemon.events.emit, "volume", action, name, attrs)
                return
        daemon.events.emit("volume", action, name, attrs)
    return emit


class VolumeService:
    """The volumes of one daemon: ``root`` is ``<data-root>/volumes``."""

    def __init__(self, owner: str | Any, *, users: Callable[[str], builtins.list[str]] | None = None,
                 emit: Emit | None = None) -> None:
        """``owner``: the volumes directory, or the Daemon (``<data-root>/volumes``, its containers' users,
        its event bus)."""
        if isinstance(owner, str):
            self.root = os.path.abspath(owner)
        else:
            self.root = os.path.join(owner.config.data_root, "volumes")
            users = users or _daemon_users(owner)
            emit = emit or _daemon_emitter(owner)
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        self.users: Callable[[str], builtins.list[str]] = users or (lambda name: [])
        self.emit: Emit = emit or (lambda action, name, attrs: None)
        self._lock = threading.RLock()
        self._active: dict[str, set[str]] = {}  # name -> containers that mounted it
        self._sweep()

    def _sweep(self) -> None:
        """Drop what a crash left: half-created volumes and half-removed ones."""
        for entry in os.listdir(self.root):
            if entry.startswith((".new-", ".rm-")):
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)

    # -- paths and records -----------------------------------------------------------------------

    def _dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def path(self, name: str) -> str:
        """The volume's mountpoint (``.../volumes/<name>/_data``)."""
        return os.path.join(self.root, name, "_data")

    def _meta(self, name: str) -> dict[str, Any]:
        """The stored record of ``name``; NotFound ``get <name>: no such volume``."""
        if not _NAME.fullmatch(name) or not os.path.isdir(self.path(name)):
            raise NotFound(f"get {name}: no such volume", id=name)
        try:
            with open(os.path.join(self._dir(name), META)) as f:
                doc: dict[str, Any] = json.load(f)
            return doc
        except (OSError, ValueError):
            return {"Name": name, "Driver": DRIVER, "Labels": None, "Options": None,
                    "CreatedAt": os.stat(self._dir(name)).st_mtime}

    def _view(self, meta: dict[str, Any]) -> dict[str, Any]:
        name = meta["Name"]
        return {"CreatedAt": rfc3339_seconds(meta.get("CreatedAt") or 0), "Driver": meta.get("Driver", DRIVER),
                "Labels": meta.get("Labels"), "Mountpoint": self.path(name), "Name": name,
                "Options": meta.get("Options"), "Scope": "local"}

    def names(self) -> builtins.list[str]:
        return sorted(n for n in os.listdir(self.root) if _NAME.fullmatch(n) and os.path.isdir(self.path(n)))

    # -- create, inspect, list -------------------------------------------------------------------

    def create(self, name: str | None = None, driver: str = DRIVER, driver_opts: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
        """POST /volumes/create: a new volume, or the existing one of that name (as dockerd).

        ``driver_opts`` / ``labels`` are shown as given: None (absent) is null, {} stays {}.
        """
        name = name or secrets.token_hex(32)
        driver = driver or DRIVER
        if driver != DRIVER:
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found',
                           id=name)
        validate_name(name)
        for key in driver_opts or {}:
            if key == "size":
                raise InvalidArgument(f"create {name}: quota size requested but no quota support")
            if key not in LOCAL_OPTIONS:
                raise InvalidArgument(f'create {name}: invalid option key: "{key}"')
        with self._lock:
            try:
                existing = self.inspect(name)
            except NotFound:
                existing = None
            if existing is not None:
                self.emit("create", name, {"driver": DRIVER})  # dockerd reports a create for an existing one too
                return existing
            meta = {"Name": name, "Driver": DRIVER, "Labels": labels if labels is not None else None,
                    "Options": dict(driver_opts) if driver_opts is not None else None, "CreatedAt": time.time()}
            tmp = os.path.join(self.root, f".new-{secrets.token_hex(8)}")
            os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
            os.chmod(tmp, 0o701)
            _write_json(os.path.join(tmp, META), meta)
            os.rename(tmp, self._dir(name))
            _fsync_dir(self.root)
        self.emit("create", name, {"driver": DRIVER})
        return self._view(meta)

    def create_anonymous(self) -> dict[str, Any]:
        """A volume named by 64 random hex digits (no label: 20.10 marks none)."""
        return self.create(None)

    def inspect(self, name: str) -> dict[str, Any]:
        return self._view(self._meta(name))

    def list(self, filters: flt.Filters | None = None) -> dict[str, Any]:
        """GET /volumes: ``{"Volumes": [...], "Warnings": null}``."""
        filters = filters or {}
        flt.validate(filters, LIST_FILTERS)
        out = []
        for name in self.names():
            try:
                meta = self._meta(name)
            except NotFound:
                continue  # removed meanwhile
            if self._matches(meta, filters):
                out.append(self._view(meta))
        return {"Volumes": out, "Warnings": None}

    def _matches(self, meta: dict[str, Any], filters: flt.Filters) -> bool:
        name = meta["Name"]
        if not flt.match(filters, "name", name) or not flt.exact_match(filters, "driver", meta.get("Driver", DRIVER)):
            return False
        if not flt.match_labels(filters, meta.get("Labels")):
            return False
        if "dangling" in filters and flt.truthy(filters, "dangling") == bool(self.users(name)):
            return False
        return True

    # -- remove, prune ---------------------------------------------------------------------------

    def remove(self, name: str, force: bool = False) -> None:
        """DELETE /volumes/{name}: 409 while containers use it; ``force`` ignores a missing volume."""
        with self._lock:
            try:
                self._meta(name)
            except NotFound:
                if force:
                    return
                raise
            using = self.users(name)
            if using:
                raise Conflict(f"remove {name}: volume is in use - {flt.go_list(using)}", id=name)
            self._destroy(name)
        self.emit("destroy", name, {"driver": DRIVER})

    def _destroy(self, name: str) -> None:
        self._unmount_device(name)
        self._active.pop(name, None)
        doomed = os.path.join(self.root, f".rm-{secrets.token_hex(8)}")
        os.rename(self._dir(name), doomed)
        _fsync_dir(self.root)
        shutil.rmtree(doomed, ignore_errors=True)

    def prune(self, filters: flt.Filters | None = None) -> dict[str, Any]:
        """POST /volumes/prune: every local volume no container uses (20.10: named ones too)."""
        filters = filters or {}
        flt.validate(filters, PRUNE_FILTERS)
        deleted, reclaimed = [], 0
        with self._lock:
            for name in self.names():
                try:
                    meta = self._meta(name)
                except NotFound:
                    continue
                if self.users(name) or not flt.match_labels(filters, meta.get("Labels")):
                    continue
                size = dir_size(self.path(name)) if not meta.get("Options") else 0
                self._destroy(name)
                deleted.append(name)
                reclaimed += size
        self.emit("prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}  # [] when none, as 20.10

    def usage(self) -> builtins.list[dict[str, Any]]:
        """`system df`'s volumes: each view with ``UsageData {RefCount, Size}``."""
        out = []
        for view in self.list()["Volumes"]:
            refs = len(self.users(view["Name"]))
            size = dir_size(view["Mountpoint"]) if not view["Options"] or view["Name"] in self._active else 0
            out.append({**view, "UsageData": {"RefCount": refs, "Size": size}})
        return out


    # -- mounts ----------------------------------------------------------------------------------

    def mount(self, name: str, container_id: str, *, destination: str = "", read_write: bool = True,
              propagation: str = "") -> str:
        """A container starts using the volume: mount its device (first user); returns the host path."""
        with self._lock:
            meta = self._meta(name)
            active = self._active.setdefault(name, set())
            if not active:
                self._mount_device(name, meta.get("Options") or {})
            active.add(container_id)
        self.emit("mount", name, {"driver": DRIVER, "container": container_id, "destination": destination,
                                  "read/write": "true" if read_write else "false", "propagation": propagation})
        return self.path(name)

    def unmount(self, name: str, container_id: str) -> None:
        """A container stops using the volume: unmount its device after the last one."""
        with self._lock:
            active = self._active.get(name)
            if active is None or container_id not in active:
                return
            active.discard(container_id)
            if not active:
                del self._active[name]
                self._unmount_device(name)
        self.emit("unmount", name, {"driver": DRIVER, "container": container_id})

    def _mount_device(self, name: str, options: dict[str, str]) -> None:
        if not options.get("type") and not options.get("device"):
            return
        from dockyard.kernel.mount import mount_one  # root-only path: loaded when a volume needs it

        target = self.path(name)
        if is_mount_point(target):
            return
        opts = tuple(o for o in options.get("o", "").split(",") if o)
        device = options.get("device", "")
        if "bind" in opts or "rbind" in opts:
            device = os.path.abspath(device)
        try:
            mount_one(_DeviceMount(options.get("type") or "none", device, opts), target)
        except OSError as e:
            raise InvalidArgument(f"error while mounting volume '{target}': failed to mount local volume: "
                                  f"mount {device}:{target}, flags: {opts}, data: {e.strerror}") from None

    def _unmount_device(self, name: str) -> None:
        target = self.path(name)
        if is_mount_point(target):
            from dockyard.kernel.mount import unmount_all

            unmount_all(target, detach=True)

    def copy_up(self, name: str, src_dir: str) -> bool:
        """Fill an EMPTY volume with the image's ``src_dir`` (owners, modes, xattrs kept).

        Call it after ``mount`` (a tmpfs volume is filled once mounted). Returns whether it copied;
        a volume holding anything is left alone, as dockerd does.
        """
        with self._lock:
            target = self.path(name)
            self._meta(name)
            if not os.path.isdir(src_dir) or os.listdir(target):
                return False
            copy_tree(src_dir, target)
            return True
