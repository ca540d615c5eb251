"""Route registration: every Engine API route exists with and without the ``/vX.Y`` prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DAEMON_KEY: web.AppKey[Daemon] = web.AppKey("daemon")
VERSION_PREFIX = r"/v{api_version:[0-9.]+}"


class Router:
    """Collects (method, path, handler) triples and registers each twice on an aiohttp app."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method, path, handler))

    def install(self, app: web.Application) -> None:
        for method, path, handler in self.routes:
            app.router.add_route(method, VERSION_PREFIX + path, handler)
            app.router.add_route(method, path, handler)


def daemon_of(request: web.Request) -> Daemon:
    return request.app[DAEMON_KEY]
