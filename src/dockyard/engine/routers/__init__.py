"""Engine API routers, one module per resource."""

from __future__ import annotations

from dockyard.engine.server.router import Router


def all_routers() -> list[Router]:
    from dockyard.engine.routers import container_io, containers, execs, system

    router = Router()
    for module in (system, containers, container_io, execs):
        module.add_routes(router)
    for name in ("images", "volumes", "info"):  # written beside this one; registered when present
        try:
            module = __import__(f"dockyard.engine.routers.{name}", fromlist=["add_routes"])
        except ImportError:
            continue
        module.add_routes(router)
    return [router]
