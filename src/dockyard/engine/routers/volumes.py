"""Volume routes: list, create, inspect, remove and prune over the daemon's VolumeService."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.engine.server.params import query_bool, query_filters, read_json
from dockyard.engine.server.responses import json_response, no_content
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import InvalidArgument


def _str_map(body: dict[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {key}: expected an object of strings")
    return {str(k): v for k, v in value.items()}


async def list_volumes(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    return json_response(await daemon.run_blocking(daemon.volumes.list, query_filters(request)))


async def create_volume(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    body = await read_json(request)
    name = body.get("Name") or None
    driver = body.get("Driver") or "local"
    if (name is not None and not isinstance(name, str)) or not isinstance(driver, str):
        raise InvalidArgument("invalid Name or Driver: expected a string")
    view = await daemon.run_blocking(daemon.volumes.create, name, driver, _str_map(body, "DriverOpts"),
                                     _str_map(body, "Labels"))
    return json_response(view, status=201)


async def inspect_volume(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    return json_response(await daemon.run_blocking(daemon.volumes.inspect, request.match_info["name"]))


async def remove_volume(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    await daemon.run_blocking(daemon.volumes.remove, request.match_info["name"], query_bool(request, "force"))
    return no_content()


async def prune_volumes(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    return json_response(await daemon.run_blocking(daemon.volumes.prune, query_filters(request)))


def add_routes(router: Router) -> None:
    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create_volume)
    router.add("POST", "/volumes/prune", prune_volumes)
    router.add("GET", "/volumes/{name}", inspect_volume)
    router.add("DELETE", "/volumes/{name}", remove_volume)
