"""Swarm routes of a node that is not in a swarm, answered as dockerd answers them.

Dockyard has no swarm mode. Clients still call these (docker-py's test suite leaves a swarm after
each network test; `docker info`-driven tools probe `/swarm`), and rely on dockerd's 503 answers
to tell "not a swarm node" from a broken daemon.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.engine.server.router import Router
from dockyard.errors import NotImplementedYet, Unavailable

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
               "this node to swarm and try again.")


async def not_manager(request: web.Request) -> web.StreamResponse:
    raise Unavailable(NOT_MANAGER)


async def leave(request: web.Request) -> web.StreamResponse:
    raise Unavailable("This node is not part of a swarm")


async def unsupported(request: web.Request) -> web.StreamResponse:
    raise NotImplementedYet("swarm mode is not supported by Dockyard")


def add_routes(router: Router) -> None:
    router.add("GET", "/swarm", not_manager)
    router.add("POST", "/swarm/leave", leave)
    router.add("POST", "/swarm/init", unsupported)
    router.add("POST", "/swarm/join", unsupported)
    for path in ("/swarm/unlockkey", "/nodes", "/services", "/tasks", "/secrets", "/configs"):
        router.add("GET", path, not_manager)
    router.add("DELETE", "/nodes/{id}", not_manager)
