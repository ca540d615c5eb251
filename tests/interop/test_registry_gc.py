"""Online GC and immutable tags against the real dockerd.

The registry runs inside this test process (an aiohttp server on its own event loop in a
thread, filesystem storage in a temp dir) so garbage collection runs IN THE SERVING PROCESS,
on the serving loop, while dockerd pushes:
1. dockerd pushes images A and B; B is deleted by digest; GC passes run back to back while
   dockerd pushes C; afterwards A and C pull and run, B's unique blobs are gone from disk.
2. With ``immutabletags: [{repository: "imm/*", tags: "v*"}]`` a changed image pushed to an
   existing immutable tag fails and dockerd prints "denied: tag v1 is immutable ...".
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web

from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.store import Registry, gc, paths
from dockyard.registry.store.immutable import parse_rules
from tests.support import hostclean
from tests.support.dockerd import DockerDaemon
from tests.support.registries import free_port

pytestmark = [pytest.mark.interop, pytest.mark.privileged]
T = TypeVar("T")
GRACE = 2.0


class InProcessRegistry:
    """dockyard's registry app on 127.0.0.1:<free port>, served by an event loop in a thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.registry = Registry(FilesystemDriver(os.path.join(root, "storage")),
                                 immutable=parse_rules([{"repository": "imm/*", "tags": "v*"}]))
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start())

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.registry), **runner_options())
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self.runner is not None:
            self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def blob_on_disk(self, d: str) -> bool:
        return os.path.exists(os.path.join(self.root, "storage", paths.blob_data(d)))


@pytest.fixture(scope="module")
def served() -> Iterator[InProcessRegistry]:
    root = tempfile.mkdtemp(prefix="dockyard-gc-interop-")
    reg = InProcessRegistry(root)
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(served: InProcessRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    hostclean.sweep_stale()
    d = DockerDaemon(log_dir=str(tmp_path_factory.mktemp("gc-dockerd-logs")),
                     extra_args=("--insecure-registry", served.host_port))
    try:
        d.start()
        d.load_busybox("gcbase:latest")
        yield d
    finally:
        d.stop()



def _commit(d: DockerDaemon, name: str, script: str) -> str:
    d.docker_ok("run", "--name", f"{name}-c", "--network", "none", "gcbase:latest", "sh", "-c", script)
    d.docker_ok("commit", f"{name}-c", f"{name}:latest")
    d.docker_ok("rm", f"{name}-c")
    return f"{name}:latest"


def _push(d: DockerDaemon, image: str, ref: str) -> str:
    d.docker_ok("tag", image, ref)
    out = d.docker_ok("push", ref)
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert found, out
    return found.group(1)


async def _refs(reg: Registry, repo: str, d: str) -> set[str]:
    data, _, _ = await reg.get_manifest(repo, d)
    doc = json.loads(data)
    return {d, doc["config"]["digest"], *(x["digest"] for x in doc["layers"])}


async def _gc_until(reg: Registry, stop: asyncio.Event, reports: list[gc.GcReport]) -> None:
    while not stop.is_set():
        reports.append(await gc.collect(reg, grace=GRACE))
        await asyncio.sleep(0.02)


def test_gc_in_the_serving_process_while_dockerd_pushes(daemon: DockerDaemon, served: InProcessRegistry) -> None:
    hp, reg = served.host_port, served.registry
    images = {n: _commit(daemon, f"gc{n}", f"echo {n} > /{n} && head -c 300000 /dev/urandom > /{n}.bin")
              for n in "abc"}
    refs = {n: f"{hp}/gc/{n}:v1" for n in "abc"}
    try:
        da, db = _push(daemon, images["a"], refs["a"]), _push(daemon, images["b"], refs["b"])
        kept, doomed = served.call(_refs(reg, "gc/a", da)), served.call(_refs(reg, "gc/b", db))
        unique = doomed - kept
        assert len(unique) == 3  # B's manifest, config and own layer; busybox's layer is shared
        served.call(reg.delete_manifest("gc/b", db))
        time.sleep(GRACE + 0.2)  # B's blobs age past the grace period; C's will be young
        stop, reports = asyncio.Event(), list[gc.GcReport]()
        task = asyncio.run_coroutine_threadsafe(_gc_until(reg, stop, reports), served.loop)
        try:
            dc = _push(daemon, images["c"], refs["c"])
        finally:
            served.loop.call_soon_threadsafe(stop.set)
            task.result(60)
        assert len(reports) >= 2, "GC did not overlap the push"
        removed = {b for r in reports for b in r.blobs}
        assert removed == unique
        assert not any(served.blob_on_disk(b) for b in unique)
        kept |= served.call(_refs(reg, "gc/c", dc))
        assert all(served.blob_on_disk(b) for b in kept)
        daemon.docker_ok("rmi", refs["a"], refs["b"], refs["c"], *images.values())
        for n in "ac":
            daemon.docker_ok("pull", refs[n])
            assert daemon.docker_ok("run", "--rm", "--network", "none", refs[n], "cat", f"/{n}") == f"{n}\n"
        gone = daemon.docker("pull", refs["b"])
        assert gone.rc != 0 and "manifest unknown" in (gone.stdout + gone.stderr).lower()
    finally:
        daemon.docker("rmi", "-f", *refs.values(), *images.values())


def test_immutable_tag_push_of_a_changed_image_is_denied(daemon: DockerDaemon, served: InProcessRegistry) -> None:
    ref = f"{served.host_port}/imm/app:v1"
    one = _commit(daemon, "imm1", "echo one > /version")
    two = _commit(daemon, "imm2", "echo two > /version")
    try:
        first = _push(daemon, one, ref)
        assert _push(daemon, one, ref) == first  # the same image again: fine
        daemon.docker_ok("tag", two, ref)
        r = daemon.docker("push", ref, timeout=120)
        assert r.rc != 0, r
        assert "denied: tag v1 is immutable in repository imm/app" in r.stdout + r.stderr, r
        daemon.docker_ok("rmi", ref)
        daemon.docker_ok("pull", ref)
        assert daemon.docker_ok("run", "--rm", "--network", "none", ref, "cat", "/version") == "one\n"
        _push(daemon, two, f"{served.host_port}/imm/app:latest")  # a mutable tag of the same repository
    finally:
        daemon.docker("rmi", "-f", ref, f"{served.host_port}/imm/app:latest", one, two)
