"""Container routes: create, list, inspect, start/stop/kill/restart, wait, rename, pause, update, remove, prune."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from dockyard.engine.daemon import filters as F
from dockyard.engine.daemon import listing
from dockyard.engine.daemon.containers.model import Container
from dockyard.engine.daemon.containers.netinfo import network_settings
from dockyard.engine.daemon.spec import resources_to_oci
from dockyard.engine.server.params import query_bool, query_filters, query_int, read_json
from dockyard.engine.server.responses import dumps, json_response, no_content, while_connected
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import InvalidArgument

UPDATABLE = ("CpuShares", "Memory", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
             "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
             "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules",
             "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness",
             "NanoCpus", "OomKillDisable", "PidsLimit", "Ulimits")


def inspect(request: web.Request, c: Container) -> dict[str, Any]:
    graph = {"Name": c.driver, "Data": None}
    return c.inspect(network_settings(c, daemon_of(request).networks), graph)


def _timeout(request: web.Request) -> int | None:
    raw = request.query.get("t", "")
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None


async def create(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, required=True)
    c, warnings = await daemon_of(request).containers.create(request.query.get("name", ""), body)
    return json_response({"Id": c.id, "Warnings": warnings}, 201)


async def list_containers(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    docs = [inspect(request, c) for c in d.containers.store]
    items = listing.select(docs, all=query_bool(request, "all"), limit=query_int(request, "limit", -1),
                           filters=query_filters(request), image_ids=lambda ref: _image_ids(request, ref),
                           now_ns=time.time_ns())
    return json_response(items)


def _image_ids(request: web.Request, ref: str) -> set[str]:
    try:
        return {daemon_of(request).images.get(ref).labels.get("dockyard.image.id", "")} - {""}
    except Exception:
        return set()


async def inspect_one(request: web.Request) -> web.StreamResponse:
    c = daemon_of(request).containers.get(request.match_info["id"])
    doc = inspect(request, c)
    if query_bool(request, "size"):
        doc["SizeRw"], doc["SizeRootFs"] = await _sizes(request, c)
    return json_response(doc)


async def _sizes(request: web.Request, c: Container) -> tuple[int, int]:
    d = daemon_of(request)
    sn = d.images.snapshotter(d.snapshotter_name)
    try:
        usage = await d.run_blocking(sn.usage, c.snapshot_key)
        rw = int(usage.size)
    except Exception:
        rw = 0
    return rw, rw + await d.run_blocking(_image_size, d, c.image_id)


def _image_size(d: Any, image_id: str) -> int:
    try:
        return sum(layer.size for layer in d.images.resolve(image_id).layers)
    except Exception:
        return 0


async def start(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.start(request.match_info["id"])
    return no_content()


async def stop(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.stop(request.match_info["id"], _timeout(request))
    return no_content()


async def restart(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.restart(request.match_info["id"], _timeout(request))
    return no_content()


async def kill(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.kill(request.match_info["id"], request.query.get("signal"))
    return no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    fut = await daemon_of(request).containers.wait(request.match_info["id"], request.query.get("condition", ""))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)  # headers now: the CLI starts the container only after this
    try:
        result = await while_connected(request, asyncio.shield(fut))
    finally:
        if not fut.done():
            fut.cancel()  # the client left: drop the waiter
    if result is None:
        return resp
    await resp.write(dumps(result).encode() + b"\n")
    await resp.write_eof()
    return resp


async def rename(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.rename(request.match_info["id"], request.query.get("name", ""))
    return no_content()


async def pause(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.pause(request.match_info["id"])
    return no_content()


async def unpause(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.unpause(request.match_info["id"])
    return no_content()


async def update(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = d.containers.get(request.match_info["id"])
    body = await read_json(request)
    resources = {k: body[k] for k in UPDATABLE if k in body}
    if c.running and resources:
        await d.runtime(c.runtime).update(c.id, resources_to_oci({**_current_resources(c), **resources}))
    c.host_config.update(resources)
    if "RestartPolicy" in body and body["RestartPolicy"] is not None:
        if c.host_config.get("AutoRemove") and (body["RestartPolicy"].get("Name") or "no") != "no":
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        c.host_config["RestartPolicy"] = body["RestartPolicy"]
    d.containers.store.save(c)
    d.containers.emit(c, "update")
    return json_response({"Warnings": None})


def _current_resources(c: Container) -> dict[str, Any]:
    return {k: c.host_config[k] for k in UPDATABLE if k in c.host_config}


async def remove(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).containers.remove(request.match_info["id"], force=query_bool(request, "force"),
                                               volumes=query_bool(request, "v"))
    return no_content()


async def prune(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    filters = query_filters(request)
    F.validate(filters, {"until", "label", "label!"})
    until = 0
    if filters.get("until"):
        from dockyard.engine.daemon.timefmt import parse_api_timestamp
        until = parse_api_timestamp(filters["until"][0])
    deleted, reclaimed = [], 0
    for c in list(d.containers.store):
        if c.running or c.id in d.containers.removing:
            continue
        if not F.match_labels(filters, c.config.get("Labels") or {}):
            continue
        if until:
            from dockyard.engine.daemon.timefmt import parse_rfc3339
            if parse_rfc3339(c.created) >= until:
                continue
        rw, _ = await _sizes(request, c)
        await d.containers.remove(c.id, force=False, volumes=False)
        deleted.append(c.id)
        reclaimed += rw
    d.events.emit("container", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def add_routes(router: Router) -> None:
    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_containers)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/{id}/json", inspect_one)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/update", update)
    router.add("DELETE", "/containers/{id}", remove)
    add_commit_route(router)


async def commit(request: web.Request) -> web.StreamResponse:
    from dockyard.engine.daemon.images import commit_image
    d = daemon_of(request)
    c = d.containers.get(request.query.get("container", ""))
    body = await read_json(request)
    config = {**c.config, **{k: v for k, v in body.items() if v is not None}} if body else dict(c.config)
    changes = request.query.getall("changes", [])
    pause = query_bool(request, "pause", True) and c.running and not c.paused
    if pause:
        await d.runtime(c.runtime).pause(c.id)
    try:
        image_id = await d.run_blocking(
            lambda: commit_image(d, snapshot_key=c.snapshot_key, container_config=config, container_id=c.id,
                                 repo=request.query.get("repo") or None, tag=request.query.get("tag") or None,
                                 comment=request.query.get("comment", ""), author=request.query.get("author", ""),
                                 changes=changes, base_image_id=c.image_id))
    finally:
        if pause:
            await d.runtime(c.runtime).resume(c.id)
    d.containers.emit(c, "commit", comment=request.query.get("comment", ""))
    return json_response({"Id": image_id}, 201)


def add_commit_route(router: Router) -> None:
    router.add("POST", "/commit", commit)
