"""The registry's aiohttp application: routes, the error middleware, common headers, access log.

Repository names may hold slashes, so routes capture ``{name:.+}`` and end in a fixed
resource segment (``/blobs/``, ``/manifests/``, ``/tags/list``, ``/referrers/``); the name is
then checked against the grammar (NAME_INVALID), not left to route matching.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest

from dockyard.errors import DockyardError, Forbidden, InvalidArgument, NotFound, Unauthorized
from dockyard.registry import errors
from dockyard.registry.errors import RegistryError
from dockyard.registry.server import blobs, catalog, manifests, referrers, tags, uploads
from dockyard.registry.server.base import REGISTRY_KEY, error_response

if TYPE_CHECKING:
    from dockyard.registry.auth import AuthSetup
    from dockyard.registry.store.registry import Registry

log = logging.getLogger("dockyard.registry.http")
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
EXTRA_HEADERS_KEY: web.AppKey[dict[str, str]] = web.AppKey("extra_headers")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NAME = "/v2/{name:.+}"
READ_BUFFER = 1 << 22  # request bytes buffered before reading pauses (aiohttp's default, 64 KiB, pauses often)


async def base(request: web.Request) -> web.StreamResponse:
    """GET /v2/: the API is supported here (200, empty JSON object)."""
    return web.json_response({})


def _as_registry_error(e: DockyardError) -> RegistryError:
    """A facade error that is not a RegistryError still gets the spec's shape."""
    if isinstance(e, RegistryError):
        return e
    err = errors.unknown(e.message)
    for category, status in ((NotFound, 404), (InvalidArgument, 400), (Forbidden, 403), (Unauthorized, 401)):
        if isinstance(e, category):
            err.status = status
            break
    return err


def _started(request: web.Request) -> bool:
    """True once response bytes were written: a second response would be read as body bytes."""
    writer = request.writer
    return writer is not None and writer.output_size > 0


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """RegistryError (and any other failure) -> ``{"errors": [...]}`` with the error's status."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DockyardError as e:
        if _started(request):
            raise  # part of a body went out: aiohttp cuts the connection, the client sees it short
        return error_response(_as_registry_error(e))
    except (ConnectionError, HttpProcessingError) as e:  # the client went away or sent a short body
        log.warning("%s %s: incomplete request: %s", request.method, request.path, e)
        return error_response(errors.blob_upload_invalid(str(e)))
    except Exception as e:  # a bug: answer 500 in the spec's shape and keep serving
        if _started(request):
            raise
        log.exception("%s %s failed", request.method, request.path)
        return error_response(errors.unknown(str(e)))


class AccessLogger(AbstractAccessLogger):
    """One log line per request once it is answered: client, method, path, final status, duration.

    An access logger (not a middleware) sees the status a FileResponse settles on (206, 416)."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %.1fms', request.remote or "-", request.method, request.path_qs,
                         response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def runner_options() -> dict[str, Any]:
    """Keyword arguments for web.AppRunner (or aiohttp's TestServer) that install the access log."""
    return {"access_log_class": AccessLogger, "access_log": log, "read_bufsize": READ_BUFFER}


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    for key, value in request.app[EXTRA_HEADERS_KEY].items():
        response.headers.setdefault(key, value)


def _routes(app: web.Application) -> None:
    r = app.router
    r.add_route("GET", "/v2/", base)
    r.add_route("GET", "/v2", base)
    r.add_route("GET", "/v2/_catalog", catalog.catalog)
    for path in (f"{_NAME}/blobs/uploads/", f"{_NAME}/blobs/uploads"):
        r.add_route("POST", path, uploads.start_upload)
    upload = f"{_NAME}/blobs/uploads/{{uuid}}"
    r.add_route("GET", upload, uploads.upload_status)
    r.add_route("PATCH", upload, uploads.patch_upload)
    r.add_route("PUT", upload, uploads.put_upload)
    r.add_route("DELETE", upload, uploads.cancel_upload)
    blob = f"{_NAME}/blobs/{{digest}}"
    r.add_route("GET", blob, blobs.get_blob)
    r.add_route("HEAD", blob, blobs.get_blob)
    r.add_route("DELETE", blob, blobs.delete_blob)
    manifest = f"{_NAME}/manifests/{{reference}}"
    r.add_route("GET", manifest, manifests.get_manifest)
    r.add_route("HEAD", manifest, manifests.get_manifest)
    r.add_route("PUT", manifest, manifests.put_manifest)
    r.add_route("DELETE", manifest, manifests.delete_manifest)
    r.add_route("GET", f"{_NAME}/tags/list", tags.list_tags)
    r.add_route("GET", f"{_NAME}/referrers/{{digest}}", referrers.list_referrers)


def create_app(registry: "Registry", *, extra_headers: dict[str, str] | None = None,
               auth: "AuthSetup | None" = None) -> web.Application:
    """The registry's HTTP API over ``registry``; ``extra_headers`` go on every response
    (config ``http.headers``); ``auth`` guards /v2 and may add the built-in token route."""
    middlewares: list[Any] = [errors_middleware]
    if auth is not None:
        middlewares.append(auth.middleware)
    app = web.Application(middlewares=middlewares)
    app[REGISTRY_KEY] = registry
    app[EXTRA_HEADERS_KEY] = dict(extra_headers or {})
    app.on_response_prepare.append(_common_headers)
    _routes(app)
    if auth is not None and auth.token_route is not None:
        app.router.add_route("GET", *auth.token_route)
    return app
