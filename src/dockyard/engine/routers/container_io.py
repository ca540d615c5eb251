"""Container I/O routes: attach, logs, resize, top, stats, export, changes, archive (docker cp)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import WSMsgType, web

from dockyard.engine.daemon import archive_paths
from dockyard.engine.daemon.archive import tar_path
from dockyard.engine.daemon.archive_extract import extract_into
from dockyard.engine.daemon.containers import task
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.logs import read_logs
from dockyard.engine.daemon.stats import StatsSampler
from dockyard.engine.daemon.timefmt import parse_api_timestamp
from dockyard.engine.daemon.top import top
from dockyard.engine.server.hijack import Hijacked
from dockyard.engine.server.params import query_bool, query_int
from dockyard.engine.server.relay import parse_detach_keys, relay
from dockyard.engine.server.responses import dumps, json_response, while_connected
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import Conflict, InvalidArgument, NotImplementedYet
from dockyard.supervisor.shim.client import demux
from dockyard.supervisor.shim.protocol import frame

TAR = "application/x-tar"


def _container(request: web.Request) -> Container:
    return daemon_of(request).containers.get(request.match_info["id"])


async def attach(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    stdin, stdout, stderr = (query_bool(request, k) for k in ("stdin", "stdout", "stderr"))
    logs, stream = query_bool(request, "logs"), query_bool(request, "stream")
    if not (logs or stream):
        raise InvalidArgument("at least one of logs or stream must be set")
    keys = parse_detach_keys(request.query.get("detachKeys", ""))
    tty = bool(c.config.get("Tty"))
    client = Hijacked(request, "application/vnd.docker.raw-stream" if tty else
                      "application/vnd.docker.multiplexed-stream")
    await client.start()
    if logs and c.paths.get("LogPath"):
        async for s, payload in read_logs(c.paths["LogPath"], stdout=stdout, stderr=stderr):
            await client.send(payload if tty else frame(s, payload))
    if not stream:
        await client.close()
        return client
    d.containers.emit(c, "attach")
    # Waits for the next start if the container is not running; gives up if the client leaves.
    shim_stream = await while_connected(request, d.containers.attach_stream(c, stdin, stdout, stderr))
    if shim_stream is None:
        await client.close()
        return client
    outcome = await relay(client, shim_stream, stdin=stdin, detach_keys=keys)
    if outcome == "detach":
        d.containers.emit(c, "detach")
    return client


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """The websocket variant of attach: binary messages both ways, output not multiplexed."""
    d = daemon_of(request)
    c = _container(request)
    stdin, stdout, stderr = (query_bool(request, k) for k in ("stdin", "stdout", "stderr"))
    tty = bool(c.config.get("Tty"))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    if query_bool(request, "logs") and c.paths.get("LogPath"):
        async for _, payload in read_logs(c.paths["LogPath"], stdout=stdout, stderr=stderr):
            await ws.send_bytes(payload)
    if not query_bool(request, "stream"):
        await ws.close()
        return ws
    stream = await d.containers.attach_stream(c, stdin, stdout, stderr)
    if stream is None:
        await ws.close()
        return ws

    async def output() -> None:
        pending = b""
        while data := await stream.read(65536):
            if tty:
                await ws.send_bytes(data)
                continue
            frames, pending = demux(pending + data)
            for _, payload in frames:
                await ws.send_bytes(payload)

    pump = asyncio.create_task(output())
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and stdin:
                data = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode()
                await stream.write(data)
        stream.close_stdin()  # the client is gone: stop relaying (the container keeps running)
    finally:
        pump.cancel()
        await stream.close()
        await ws.close()
    return ws


async def logs(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    log_type = (c.host_config.get("LogConfig") or {}).get("Type")
    if log_type == "none" or not c.paths.get("LogPath"):
        if log_type == "none":
            raise NotImplementedYet('configured logging driver does not support reading')
    since = parse_api_timestamp(request.query["since"]) if request.query.get("since") else 0
    until = parse_api_timestamp(request.query["until"]) if request.query.get("until") else 0
    raw_tail = request.query.get("tail", "all")
    tail = -1 if raw_tail in ("", "all") else _int(raw_tail)
    tty = bool(c.config.get("Tty"))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/vnd.docker.raw-stream" if tty else
                                                   "application/vnd.docker.multiplexed-stream"})
    await resp.prepare(request)
    path = c.paths.get("LogPath") or task.Paths(d, c).log
    follow = query_bool(request, "follow") and c.running

    async def pump() -> None:
        async for s, payload in read_logs(path, stdout=stdout, stderr=stderr, since_ns=since, until_ns=until,
                                          tail=tail, follow=follow, timestamps=query_bool(request, "timestamps"),
                                          stopped=d.containers.stopped_event(c)):
            await resp.write(payload if tty else frame(s, payload))
        await resp.write_eof()

    await while_connected(request, pump())
    return resp


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        return -1


async def resize(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    h, w = query_int(request, "h", 0), query_int(request, "w", 0)
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    await d.containers.shim(c).resize(h, w)
    d.containers.emit(c, "resize", height=str(h), width=str(w))
    return web.Response(status=200)


async def top_route(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    pids = await d.runtime(c.runtime).pids(c.id)
    result = await top(pids, request.query.get("ps_args", "") or "-ef")
    d.containers.emit(c, "top")
    return json_response(result)


async def stats(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    stream = query_bool(request, "stream", True) and not query_bool(request, "one-shot")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    sampler = StatsSampler(int(c.state.get("Pid") or 0), c.name, c.id)
    if not stream and not query_bool(request, "one-shot"):
        sampler.sample()  # precpu_stats from a sample a moment ago, like Docker's non-streamed answer
        await asyncio.sleep(1)

    async def pump() -> None:
        while True:
            sampler.pid = int(c.state.get("Pid") or 0) if c.running else 0
            await resp.write(dumps(sampler.sample()).encode() + b"\n")
            if not stream:
                break
            await asyncio.sleep(1)
        await resp.write_eof()

    await while_connected(request, pump())
    return resp


@contextlib.asynccontextmanager
async def rootfs_of(request: web.Request, c: Container) -> AsyncIterator[str]:
    """The container's root filesystem on the host, mounted for the duration if it is not running."""
    d = daemon_of(request)
    paths = task.Paths(d, c)
    if c.running:
        yield paths.rootfs
        return
    async with d.containers.locks[c.id]:
        await d.run_blocking(task.mount_rootfs, d, c, paths)
        try:
            yield paths.rootfs
        finally:
            if not c.running:
                await d.run_blocking(task.unmount_rootfs, paths)


def _mounts(c: Container) -> list[tuple[str, str]]:
    return [(m["Destination"], m["Source"]) for m in c.mount_points if m.get("Source")]


async def _stream_iter(request: web.Request, resp: web.StreamResponse, make: Any) -> None:
    """Run a blocking bytes iterator in a thread, writing its chunks to the response."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=16)

    def work() -> None:
        try:
            for chunk in make():
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
        except BaseException as e:  # handed to the event loop
            asyncio.run_coroutine_threadsafe(queue.put(e), loop).result()

    threading.Thread(target=work, daemon=True).start()
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        await resp.write(item)


async def archive_head(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    path = _path_param(request)
    async with rootfs_of(request, c) as rootfs:
        st = await daemon_of(request).run_blocking(archive_paths.stat_path, rootfs, _mounts(c), path, c.bare_name)
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": archive_paths.encode_stat(st),
                                             "Content-Type": TAR})


def _path_param(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


async def archive_get(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    path = _path_param(request)
    async with rootfs_of(request, c) as rootfs:
        st = await daemon_of(request).run_blocking(archive_paths.stat_path, rootfs, _mounts(c), path, c.bare_name)
        resp = web.StreamResponse(status=200, headers={"X-Docker-Container-Path-Stat": archive_paths.encode_stat(st),
                                                       "Content-Type": TAR})
        await resp.prepare(request)
        await _stream_iter(request, resp, lambda: tar_path(rootfs, _mounts(c), path, c.bare_name))
    await resp.write_eof()
    daemon_of(request).containers.emit(c, "archive-path")
    return resp


async def archive_put(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    path = _path_param(request)
    body = await request.read()
    ro_mounts = frozenset(m["Destination"] for m in c.mount_points if not m.get("RW", True))
    async with rootfs_of(request, c) as rootfs:
        await d.run_blocking(
            lambda: extract_into(rootfs, _mounts(c), path, io.BytesIO(body), name=c.bare_name,
                                 no_overwrite_dir_non_dir=query_bool(request, "noOverwriteDirNonDir"),
                                 copy_uid_gid=query_bool(request, "copyUIDGID"), user=str(c.config.get("User") or ""),
                                 readonly_rootfs=bool(c.host_config.get("ReadonlyRootfs")),
                                 readonly_mounts=ro_mounts))
    d.containers.emit(c, "extract-to-dir")
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = _container(request)
    resp = web.StreamResponse(status=200, headers={"Content-Type": TAR})
    await resp.prepare(request)

    def chunks() -> Iterator[bytes]:
        r, w = os.pipe()
        out = os.fdopen(w, "wb")
        err: list[BaseException] = []

        def produce() -> None:
            try:
                d.images.export(c.snapshot_key, out, d.snapshotter_name)
            except BaseException as e:
                err.append(e)
            finally:
                out.close()

        t = threading.Thread(target=produce, daemon=True)
        t.start()
        with os.fdopen(r, "rb") as src:
            while chunk := src.read(1 << 16):
                yield chunk
        t.join()
        if err:
            raise err[0]

    await _stream_iter(request, resp, chunks)
    await resp.write_eof()
    d.containers.emit(c, "export")
    return resp


async def changes(request: web.Request) -> web.StreamResponse:
    from dockyard.images.diff import snapshot_changes
    d = daemon_of(request)
    c = _container(request)
    sn = d.images.snapshotter(d.snapshotter_name)
    found = await d.run_blocking(snapshot_changes, sn, c.snapshot_key)
    return json_response([{"Path": ch.path, "Kind": ch.kind.docker_code} for ch in found] or None)


def add_routes(router: Router) -> None:
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/attach/ws", attach_ws)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("GET", "/containers/{id}/top", top_route)
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("HEAD", "/containers/{id}/archive", archive_head)
    router.add("GET", "/containers/{id}/archive", archive_get)
    router.add("PUT", "/containers/{id}/archive", archive_put)
    router.add("GET", "/containers/{id}/export", export)
    router.add("GET", "/containers/{id}/changes", changes)

