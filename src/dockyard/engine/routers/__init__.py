"""Engine API routers, one module per resource."""

from __future__ import annotations

from dockyard.engine.server.router import Router


def all_routers() -> list[Router]:
    from dockyard.engine.routers import (container_io, containers, execs, images, info, networks, swarm, system,
                                         volumes)

    router = Router()
    for module in (system, info, containers, container_io, execs, images, volumes, networks, swarm):
        module.add_routes(router)
    return [router]
