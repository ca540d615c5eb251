"""Network routes: list, inspect, create, remove, prune, connect and disconnect."""

from __future__ import annotations

from aiohttp import web

from dockyard.engine.server.params import query_filters, read_json
from dockyard.engine.server.responses import json_response, no_content
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import InvalidArgument


async def list_networks(request: web.Request) -> web.StreamResponse:
    return json_response(daemon_of(request).networks.list_docs(query_filters(request)))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(daemon_of(request).networks.inspect(request.match_info["id"]))


async def prune(request: web.Request) -> web.StreamResponse:
    deleted = await daemon_of(request).networks.prune(query_filters(request))
    return json_response({"NetworksDeleted": deleted or None})


async def create(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid network config")
    return json_response(await daemon_of(request).networks.create(body), status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    await daemon_of(request).networks.remove(request.match_info["id"])
    return no_content()


async def connect(request: web.Request) -> web.StreamResponse:
    body = await read_json(request) or {}
    d = daemon_of(request)
    await d.containers.connect_network(request.match_info["id"], str(body.get("Container") or ""),
                                       dict(body.get("EndpointConfig") or {}))
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.StreamResponse:
    body = await read_json(request) or {}
    d = daemon_of(request)
    await d.containers.disconnect_network(request.match_info["id"], str(body.get("Container") or ""),
                                          bool(body.get("Force")))
    return web.Response(status=200)


def add_routes(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
