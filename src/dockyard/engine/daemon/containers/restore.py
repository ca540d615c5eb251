"""Daemon start: pick up every container where the last daemon left it (live-restore).

Running containers whose shim answers get a new monitor; a shim that is gone left an exit
record (or, if it died too, the container is killed and marked exited); anything mounted for a
container that is not running is unmounted; snapshots of containers that were never recorded
(a kill -9 during create) are removed; then restart policies apply as after a reboot.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from dockyard.engine.daemon.containers import initlayer, task
from dockyard.engine.daemon.timefmt import now_rfc3339, parse_rfc3339
from dockyard.errors import DockyardError
from dockyard.supervisor.shim.client import ShimClient

if TYPE_CHECKING:
    from dockyard.engine.daemon.containers.model import Container
    from dockyard.engine.daemon.containers.service import ContainerService

log = logging.getLogger("dockyard.engine")


async def restore(svc: ContainerService) -> None:
    broken = svc.store.load_all()
    for id in broken:
        log.warning("container %s: unreadable record, ignored", id)
    await svc.daemon.run_blocking(_drop_orphan_snapshots, svc)
    await asyncio.gather(*(_restore_one(svc, c) for c in svc.store))
    net = svc.daemon.networks
    await net.endpoints.sweep([c for c in svc.store if c.running])
    await net.apply_firewall()  # reconcile: the table is rewritten from what is running now
    for c in svc.store:
        policy = (c.host_config.get("RestartPolicy") or {}).get("Name")
        if not c.running and not c.manually_stopped and policy in ("always", "unless-stopped"):
            try:
                await svc.start(c.id)
            except DockyardError as e:
                log.warning("container %s: restart at daemon start failed: %s", c.short_id, e)


async def _restore_one(svc: ContainerService, c: Container) -> None:
    paths = svc.paths(c)
    if not (c.running or c.state.get("Restarting")):
        if os.path.exists(paths.socket):  # killed between `runtime create` and recording the start
            log.warning("container %s: removing a run that was never recorded as started", c.short_id)
            await svc._reap_orphan(c)
        await svc.daemon.run_blocking(task.unmount_rootfs, paths)
        await svc.daemon.run_blocking(task.remove_bundle, paths)
        if c.network_settings.get("SandboxKey"):
            await svc.daemon.networks.endpoints.teardown(c)
            svc.store.save(c)
        return
    if c.state.get("Restarting"):
        c.set_exited(int(c.state.get("ExitCode") or 0), c.state.get("FinishedAt") or now_rfc3339())
        svc.store.save(c)
        return
    client = ShimClient(paths.socket, paths.exit_file)
    try:
        state = await asyncio.wait_for(client.state(), 5)
    except (DockyardError, OSError, asyncio.TimeoutError):
        state = None
    if state is not None:
        for m in c.mount_specs:  # volume reference counts live in memory: count this container again
            if m["type"] == "volume":
                await svc.daemon.run_blocking(svc.daemon.volumes.mount, m["name"], c.id)
        await svc.daemon.networks.endpoints.restore(c)
        svc.shims[c.id] = client
        svc.stopped[c.id] = asyncio.Event()
        svc.monitors[c.id] = asyncio.create_task(svc._monitor(c, client))
        svc.health.start(c)
        log.info("container %s: reconnected to its shim", c.short_id)
        return
    record = client.exit_record()
    if record is not None and _after(record.get("exited_at"), c.state.get("StartedAt")):
        await svc._handle_exit(c, int(record.get("exit_code", 255)), str(record.get("exited_at")),
                               oom=bool(record.get("oom_killed")))
        return
    log.warning("container %s: no shim and no exit record; killing what is left", c.short_id)
    await svc._reap_orphan(c)
    await svc._handle_exit(c, 255, now_rfc3339(), "the container's shim died while the daemon was down")


def _after(a: object, b: object) -> bool:
    try:
        return parse_rfc3339(str(a)) >= parse_rfc3339(str(b))
    except (DockyardError, ValueError):
        return True


def _drop_orphan_snapshots(svc: ContainerService) -> None:
    """Snapshots named after a container that has no record (kill -9 during create)."""
    sn = svc.daemon.images.snapshotter(svc.daemon.snapshotter_name)
    known = {c.id for c in svc.store}
    orphans = set()
    for info in sn.walk():
        owner = info.key.split("-", 1)[0]
        if len(owner) == 64 and all(ch in "0123456789abcdef" for ch in owner) and owner not in known:
            orphans.add(owner)
    for owner in orphans:
        try:
            initlayer.remove_container(sn, owner)
            log.info("removed the snapshots of never-recorded container %s", owner[:12])
        except DockyardError as e:
            log.warning("could not remove the snapshots of %s: %s", owner[:12], e)
