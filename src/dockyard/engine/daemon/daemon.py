"""The daemon: the stores and services every router works with, and their lifecycle.

    <data-root>/
        images/          the supervisor's content store, metadata and snapshots (ImageService)
        containers/      one directory per container (see containers.store)
        volumes/         local volumes (see volumes)
        engine-id        this daemon's ID (`docker info`)
    <exec-root>/
        <id>/            a running container's bundle: config.json, shim.json, init.pid, log.json
        s/<id[:24]>      the container's shim socket (short: unix socket paths are limited to 108 bytes)
        runtime/         --root of the OCI runtime
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from dockyard.engine.config import DaemonConfig
from dockyard.engine.daemon.events import EventBus
from dockyard.supervisor.images import ImageService
from dockyard.supervisor.runtime_client import RuntimeClient
from dockyard.supervisor.shim.client import ShimLauncher

T = TypeVar("T")
log = logging.getLogger("dockyard.engine")


class Daemon:
    """Everything one dockyardd owns."""

    def __init__(self, config: DaemonConfig) -> None:
        from dockyard.engine.daemon.containers.service import ContainerService
        from dockyard.engine.daemon.volumes import VolumeService

        self.config = config
        for d in (config.data_root, config.exec_root, self.runtime_root, os.path.join(config.exec_root, "s")):
            os.makedirs(d, mode=0o711, exist_ok=True)
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.images = ImageService(os.path.join(config.data_root, "images"))
        self.snapshotter_name = "native" if config.storage_driver == "vfs" else "overlayfs"
        self.images.default_snapshotter = self.snapshotter_name
        self.events = EventBus()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.volumes = VolumeService(self)
        from dockyard.engine.daemon.networking.service import NetworkService
        self.networks = NetworkService(self)
        self.containers = ContainerService(self)
        from dockyard.engine.daemon.containers.execs import ExecService
        self.execs = ExecService(self)
        self.id = self._engine_id()
        self.shim_launcher = ShimLauncher(log_path=os.path.join(config.exec_root, "shim-warm.log"),
                                          owner=config.exec_root)

    @property
    def runtime_root(self) -> str:
        return os.path.join(self.config.exec_root, "runtime")

    def runtime(self, name: str) -> RuntimeClient:
        """The runtime ``name`` with the global flags the daemon always passes."""
        path = self.config.runtimes[name]
        return RuntimeClient(path, ("--root", os.path.join(self.runtime_root, name),
                                    *self.config.runtime_args.get(name, ())))

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Store and filesystem work, one at a time, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_thread, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events.bind(self.loop)
        await self.networks.start()
        await self.containers.restore()
        self.shim_launcher.prepare()

    async def shutdown(self) -> None:
        await self.containers.shutdown(live_restore=self.config.live_restore)
        await self.networks.shutdown()
        await self.shim_launcher.close()
        self.images.close()
        self._store_thread.shutdown(wait=True)

    def _engine_id(self) -> str:
        path = os.path.join(self.config.data_root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            value = str(uuid.uuid4())
            with open(path + ".tmp", "w") as f:
                f.write(value)
            os.replace(path + ".tmp", path)
            return value
