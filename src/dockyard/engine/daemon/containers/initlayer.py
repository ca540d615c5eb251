"""The init layer: a committed snapshot between the image and the container's writable layer.

It holds empty mount points the daemon always mounts over (/etc/hosts, /etc/hostname,
/etc/resolv.conf, /dev/..., /proc, /sys) and /.dockerenv, like dockerd's "<id>-init" layer,
so these never show up in `docker diff` or in a `docker commit` of the container.
"""

from __future__ import annotations

import os

from dockyard.supervisor.snapshots import BaseSnapshotter

FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv", "dev/console")
DIRS = ("dev", "dev/pts", "dev/shm", "proc", "sys", "etc")


def init_key(container_id: str) -> str:
    return f"{container_id}-init"


def _exists(rel: str, dirs: list[str]) -> bool:
    return any(os.path.lexists(os.path.join(d, rel)) for d in dirs)


def _populate(upper: str, lower: list[str]) -> None:
    every = [upper, *lower]
    for rel in DIRS:
        if not _exists(rel, every):
            os.makedirs(os.path.join(upper, rel), mode=0o755, exist_ok=True)
    for rel in FILES:
        if not _exists(rel, every):
            os.makedirs(os.path.dirname(os.path.join(upper, rel)), mode=0o755, exist_ok=True)
            with open(os.path.join(upper, rel), "w"):
                pass
            os.chmod(os.path.join(upper, rel), 0o755 if rel == ".dockerenv" else 0o644)


def prepare_container(sn: BaseSnapshotter, container_id: str, image_top: str | None) -> None:
    """Blocking: the init layer on ``image_top``, then the container's active snapshot on it."""
    key = init_key(container_id)
    active = key + "-active"
    sn.prepare(active, image_top)
    try:
        _populate(sn.upper_dir(active), sn.parents(active))
        sn.commit(key, active)
    except BaseException:
        sn.remove(active)
        raise
    try:
        sn.prepare(container_id, key)
    except BaseException:
        sn.remove(key)
        raise


def remove_container(sn: BaseSnapshotter, container_id: str) -> None:
    """Blocking: remove the container's snapshot and its init layer (missing ones are fine)."""
    from dockyard.errors import NotFound
    for key in (container_id, init_key(container_id), init_key(container_id) + "-active"):
        try:
            sn.remove(key)
        except NotFound:
            pass
