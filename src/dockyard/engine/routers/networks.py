"""Network routes for the built-in networks (bridge, host, none).

User-defined networks, connect/disconnect and real bridge networking belong to the networking
issue; until then "bridge" is a private network namespace with loopback only (docs/engine.md),
and creating a network answers 501.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from dockyard.engine.daemon import filters as F
from dockyard.engine.daemon.containers.netinfo import network_name
from dockyard.engine.server.params import query_filters
from dockyard.engine.server.responses import json_response
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import Forbidden, NotFound, NotImplementedYet

BUILTIN = {"bridge": "bridge", "host": "host", "none": "null"}
FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}


def network_id(engine_id: str, name: str) -> str:
    return hashlib.sha256(f"{engine_id}/{name}".encode()).hexdigest()


def _doc(request: web.Request, name: str, verbose: bool = True) -> dict[str, Any]:
    d = daemon_of(request)
    members = {c.id: {"Name": c.bare_name, "EndpointID": "", "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}
               for c in d.containers.store if c.running and network_name(c) == name}
    config = [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}] if name == "bridge" else []
    return {"Name": name, "Id": network_id(d.id, name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": BUILTIN[name], "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None,
                                                                  "Config": config},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": members if verbose else {}, "Options": {}, "Labels": {}}


def _find(request: web.Request, ref: str) -> str:
    d = daemon_of(request)
    for name in BUILTIN:
        if ref == name or (len(ref) >= 1 and network_id(d.id, name).startswith(ref)):
            return name
    raise NotFound(f"network {ref} not found")


async def list_networks(request: web.Request) -> web.StreamResponse:
    filters = query_filters(request)
    F.validate(filters, FILTERS)
    out = []
    for name in BUILTIN:
        doc = _doc(request, name)
        if not F.match(filters, "name", name) or not F.match(filters, "driver", doc["Driver"]):
            continue
        if filters.get("id") and not any(doc["Id"].startswith(v) for v in filters["id"]):
            continue
        if filters.get("type") and "builtin" not in filters["type"]:
            continue
        if not F.match_labels(filters, {}):
            continue
        out.append(doc)
    return json_response(out)


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(_doc(request, _find(request, request.match_info["id"])))


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response({"NetworksDeleted": None})


async def create(request: web.Request) -> web.StreamResponse:
    raise NotImplementedYet("user-defined networks are not supported by Dockyard yet")


async def remove(request: web.Request) -> web.StreamResponse:
    name = _find(request, request.match_info["id"])
    raise Forbidden(f"{name} is a pre-defined network and cannot be removed")


async def connect(request: web.Request) -> web.StreamResponse:
    _find(request, request.match_info["id"])
    raise NotImplementedYet("connecting containers to networks is not supported by Dockyard yet")


def add_routes(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", connect)
