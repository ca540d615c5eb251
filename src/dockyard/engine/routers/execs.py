"""Exec routes: create, start (hijacked or detached), resize, inspect."""

from __future__ import annotations

import asyncio

from aiohttp import web

from dockyard.engine.server.hijack import Hijacked
from dockyard.engine.server.params import query_int, read_json
from dockyard.engine.server.relay import parse_detach_keys, relay
from dockyard.engine.server.responses import json_response
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import DockyardError
from dockyard.supervisor.shim.protocol import frame


async def create(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    c = d.containers.get(request.match_info["id"])
    body = await read_json(request, required=True)
    e = d.execs.create(c, body, request.match_info["id"])
    return json_response({"Id": e.id}, 201)


async def start(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    e = d.execs.get(request.match_info["id"])
    body = await read_json(request)
    detach = bool(body.get("Detach"))
    keys = parse_detach_keys(e.config.get("DetachKeys") or "")
    if detach:
        await d.execs.start(e, detach=True)
        return web.Response(status=200)
    tty = bool(e.config.get("Tty"))
    client = Hijacked(request, "application/vnd.docker.raw-stream" if tty else
                      "application/vnd.docker.multiplexed-stream")
    await client.start()  # like dockerd: upgrade first, a failed start is reported on the stream
    try:
        stream = await d.execs.start(e, detach=False)
    except DockyardError as err:
        message = f"{err}\r\n".encode()
        await client.send(message if tty else frame(1, message))
        await client.close()
        return client
    assert stream is not None

    async def exited() -> None:
        await asyncio.wait_for(e.done.wait(), 10)

    outcome = await relay(client, stream, stdin=bool(e.config.get("AttachStdin")), detach_keys=keys,
                          before_close=exited)
    if outcome == "detach":
        d.containers.emit(e.container, "exec_detach", execID=e.id)
    return client


async def resize(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    e = d.execs.get(request.match_info["id"])
    shim = d.containers.shim(e.container)
    await shim.resize(query_int(request, "h", 0), query_int(request, "w", 0), exec_id=e.id)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(daemon_of(request).execs.get(request.match_info["id"]).inspect())


def add_routes(router: Router) -> None:
    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
