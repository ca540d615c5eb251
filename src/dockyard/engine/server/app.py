"""The aiohttp application: version prefix checks, error mapping, Docker's response headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from dockyard.engine import version as v
from dockyard.engine.server.errors import status_of
from dockyard.engine.server.responses import json_response
from dockyard.engine.server.router import DAEMON_KEY, Handler, Router
from dockyard.errors import DockyardError

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

log = logging.getLogger("dockyard.engine")


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status)


def _check_version(request: web.Request) -> None:
    requested = request.match_info.get("api_version")
    if not requested:
        return
    asked = v.version_tuple(requested)
    if asked < v.version_tuple(v.MIN_API_VERSION):
        raise _TooOld(f"client version {requested} is too old. Minimum supported API version is "
                            f"{v.MIN_API_VERSION}, please upgrade your client to a newer version")
    if asked > v.version_tuple(v.MAX_API_VERSION):
        raise _VersionError(f"client version {requested} is too new. Maximum supported API version is "
                            f"{v.MAX_API_VERSION}")


class _VersionError(Exception):
    pass


class _TooOld(_VersionError):
    """dockerd answers this one in plain text (it is checked before its JSON error handling)."""


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    try:
        _check_version(request)
        response = await handler(request)
        log.debug("%s %s -> %s in %.1f ms", request.method, request.path, response.status,
                  (time.monotonic() - started) * 1000)
        return response
    except _TooOld as e:
        return web.Response(status=400, text=f"{e}\n", content_type="text/plain")
    except _VersionError as e:
        return error_response(400, str(e))
    except DockyardError as e:
        status = status_of(e)
        log.log(logging.DEBUG if status < 500 else logging.ERROR, "%s %s: %s", request.method, request.path, e)
        return error_response(status, e.message)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        log.debug("%s %s: no such route", request.method, request.path)
        return error_response(404, "page not found")
    except web.HTTPException:
        raise
    except ConnectionError as e:  # the client went away mid-stream: nothing to answer, nothing leaked
        log.debug("%s %s: client gone: %s", request.method, request.path, e)
        return web.Response(status=500)
    except Exception as e:  # the daemon never dies on a request
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"{type(e).__name__}: {e}")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = v.SERVER_HEADER
    response.headers.setdefault("Api-Version", v.API_VERSION)
    response.headers.setdefault("Ostype", "linux")


async def _options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200)


def create_app(daemon: Daemon, routers: Iterable[Router]) -> web.Application:
    app = web.Application(middlewares=[api_middleware], client_max_size=0, handler_args={"max_field_size": 65536})
    app[DAEMON_KEY] = daemon
    for router in routers:
        router.install(app)
    app.router.add_route("OPTIONS", "/{tail:.*}", _options)
    app.on_response_prepare.append(_headers)
    return app
