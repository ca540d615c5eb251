"""System routes: ping, version, events, df."""

from __future__ import annotations

import platform
import time

from aiohttp import web

from dockyard.engine import version as v
from dockyard.engine.daemon import filters as F
from dockyard.engine.daemon import images as image_views
from dockyard.engine.daemon.timefmt import parse_api_timestamp
from dockyard.engine.server.params import query_filters
from dockyard.engine.server.responses import dumps, json_response, while_connected
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import InvalidArgument

PING_HEADERS = {"Api-Version": v.API_VERSION, "Builder-Version": "1", "Docker-Experimental": "false",
                "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


async def ping(request: web.Request) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=200, headers={**PING_HEADERS, "Content-Type": "text/plain; charset=utf-8",
                                                 "Content-Length": "0"})
    return web.Response(status=200, text="OK", headers=PING_HEADERS)


def version_doc() -> dict[str, object]:
    details = {"ApiVersion": v.API_VERSION, "Arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
               "BuildTime": "", "Experimental": "false", "GitCommit": v.GIT_COMMIT, "GoVersion": "python" +
               platform.python_version(), "KernelVersion": v.kernel_version(), "MinAPIVersion": v.MIN_API_VERSION,
               "Os": "linux"}
    return {"Platform": {"Name": "Dockyard Engine"},
            "Components": [{"Name": "Engine", "Version": v.SERVER_VERSION, "Details": details}],
            "Version": v.SERVER_VERSION, "ApiVersion": v.API_VERSION, "MinAPIVersion": v.MIN_API_VERSION,
            "GitCommit": v.GIT_COMMIT, "GoVersion": details["GoVersion"], "Os": "linux", "Arch": details["Arch"],
            "KernelVersion": v.kernel_version(), "BuildTime": ""}


async def version(request: web.Request) -> web.StreamResponse:
    return json_response(version_doc())


async def events(request: web.Request) -> web.StreamResponse:
    d = daemon_of(request)
    filters = query_filters(request)
    F.validate(filters, set(F.EVENT_FILTERS))
    since = parse_api_timestamp(request.query["since"]) if request.query.get("since") else 0
    until = parse_api_timestamp(request.query["until"]) if request.query.get("until") else 0
    if since and until and since > until:
        raise InvalidArgument("`since` time cannot be after `until` time")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)

    async def pump() -> None:
        async for ev in d.events.stream(since, until, lambda ev: F.match_event(ev, filters)):
            await resp.write(dumps(ev).encode() + b"\n")
        await resp.write_eof()

    await while_connected(request, pump())
    return resp


async def df(request: web.Request) -> web.StreamResponse:
    from dockyard.engine.routers.containers import _sizes, inspect
    from dockyard.engine.daemon import listing
    d = daemon_of(request)
    containers = []
    for c in d.containers.store:
        item = listing.summary(inspect(request, c), time.time_ns())
        item["SizeRw"], item["SizeRootFs"] = await _sizes(request, c)
        containers.append(item)
    images = await d.run_blocking(image_views.df_entries, d)
    volumes = await d.run_blocking(d.volumes.usage)
    layers = sum(int(str(i.get("Size") or 0)) for i in images)
    return json_response({"LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes,
                          "BuildCache": []})


async def build_prune(request: web.Request) -> web.StreamResponse:
    """No builder yet, so no build cache: nothing to reclaim (`docker system prune` asks anyway)."""
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


async def auth(request: web.Request) -> web.StreamResponse:
    """POST /auth: log in to the registry of ``serveraddress`` (dockyard.distribution.login)."""
    from dockyard.distribution.login import credentials_of, login

    try:
        body = await request.json()
    except ValueError:
        raise InvalidArgument("invalid auth configuration: not JSON") from None
    domain, creds = credentials_of(body)
    d = daemon_of(request)
    result = await login(domain, creds, tuple(d.config.insecure_registries))
    return json_response({"Status": result.status, "IdentityToken": result.identity_token})


def add_routes(router: Router) -> None:
    router.add("POST", "/auth", auth)
    router.add("POST", "/build/prune", build_prune)
    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/events", events)
    router.add("GET", "/system/df", df)

