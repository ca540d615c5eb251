"""Image routes (Engine API 1.41): list, inspect, history, tag, delete, prune, import, load, save.

Store work runs on the daemon's store thread (``run_blocking``); events are emitted here, on the
event loop. Request bodies (tars to import or load) are spooled to a temp file first, so a slow
client never holds the store thread; a save is written to a temp file, then streamed out.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from aiohttp import web

from dockyard.engine.daemon import images as ops
from dockyard.engine.server.params import query_bool, query_filters, query_list
from dockyard.engine.server.responses import JSONStream, json_response
from dockyard.engine.server.router import Router, daemon_of
from dockyard.errors import DockyardError, InvalidArgument, NotFound, NotImplementedYet
from dockyard.oci import reference

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

CHUNK = 1 << 20


def graph_driver(daemon: Daemon) -> str:
    """The storage driver name dockerd would show: overlay2, or vfs for the native snapshotter."""
    return "overlay2" if daemon.snapshotter_name == "overlayfs" else "vfs"


def emit(daemon: Daemon, events: Iterable[ops.Event]) -> None:
    for action, actor, attrs in events:
        daemon.events.emit("image", action, actor, attrs)


def image_users(daemon: Daemon) -> ops.Users:
    """Containers using an image, with whether each is running (a hard delete conflict)."""
    def users(image_id: str) -> list[tuple[str, bool]]:
        containers: Any = daemon.containers
        return [(cid, _running(containers, cid)) for cid in containers.image_users(image_id)]
    return users


def _running(containers: Any, cid: str) -> bool:
    try:
        return bool(containers.store.get(cid).running)
    except (AttributeError, DockyardError):
        return False


def _spool_dir(daemon: Daemon) -> str:
    return daemon.images.root


async def spool_body(request: web.Request, daemon: Daemon) -> IO[bytes]:
    """The request body in an unnamed temp file next to the image store, rewound."""
    loop = asyncio.get_running_loop()
    f = tempfile.TemporaryFile(dir=_spool_dir(daemon))
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            await loop.run_in_executor(None, f.write, chunk)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


# -- views -----------------------------------------------------------------------------------


async def list_images(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    images = await daemon.run_blocking(ops.list_images, daemon.images, query_filters(request))
    return json_response(images)  # RepoDigests always present (?digests only mattered before API 1.24)


async def inspect_image(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    name = request.match_info["name"]
    try:
        info = await daemon.run_blocking(ops.find_image, daemon.images, name)
    except NotFound as e:  # dockerd's inspect wraps the lookup error with the name asked for
        raise NotFound(f"no such image: {name}: {e}", id=name) from None
    return json_response(ops.inspect(info, graph_driver(daemon)))


async def image_history(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    info = await daemon.run_blocking(ops.find_image, daemon.images, request.match_info["name"])
    return json_response(ops.history(info))


# -- changes ---------------------------------------------------------------------------------


async def tag_image(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    events = await daemon.run_blocking(ops.tag, daemon.images, request.match_info["name"],
                                       request.query.get("repo", ""), request.query.get("tag", ""))
    emit(daemon, events)
    return web.Response(status=201)


async def delete_image(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    records, events = await daemon.run_blocking(ops.delete, daemon.images, request.match_info["name"],
                                                image_users(daemon), force=query_bool(request, "force"))
    emit(daemon, events)
    if any("Deleted" in r for r in records):
        await daemon.run_blocking(daemon.images.gc)  # the deleted image's blobs and snapshots go now
    return json_response(records)


async def prune_images(request: web.Request) -> web.StreamResponse:
    daemon = daemon_of(request)
    report, events = await daemon.run_blocking(ops.prune, daemon.images, query_filters(request),
                                               image_users(daemon))
    emit(daemon, events)
    daemon.events.emit("image", "prune", "", {"reclaimed": str(report["SpaceReclaimed"])})
    return json_response(report)


# -- create (import / pull), load, save ------------------------------------------------------


async def create_image(request: web.Request) -> web.StreamResponse:
    """POST /images/create: pull (fromImage) or import the body (fromSrc=-)."""
    daemon = daemon_of(request)
    q = request.query
    if q.get("fromImage"):
        return await _pull(request, daemon, q["fromImage"], q.get("tag", ""))
    source = q.get("fromSrc", "")
    if source != "-":
        if not source:
            raise InvalidArgument("fromImage or fromSrc is required")
        raise NotImplementedYet(f"importing from a URL is not implemented yet: {source}")
    repo, tag = q.get("repo", ""), q.get("tag", "")
    if repo:
        ops.parse_repo_tag(repo, tag)  # a bad name is a 400 before the body is read
    with await spool_body(request, daemon) as body:
        image_id, events = await daemon.run_blocking(
            ops.import_image, daemon.images, body, repo=repo, tag_=tag, message=q.get("message", ""),
            changes=query_list(request, "changes"))
    emit(daemon, events)
    stream = JSONStream(request)
    await stream.send({"status": image_id})
    return await stream.finish()


def _pull_ref(image: str, tag: str) -> str:
    if tag:
        image += ("@" if ":" in tag else ":") + tag
    try:
        return reference.parse(image).familiar()
    except InvalidArgument:
        raise InvalidArgument("invalid reference format") from None


async def _pull(request: web.Request, daemon: Daemon, image: str, tag: str) -> web.StreamResponse:
    """Pull from the image's registry (dockyard.distribution); errors before any output are HTTP errors.

    ``platform`` (os/arch[/variant]) picks a manifest list entry; a name with no tag and no ``tag``
    parameter pulls every tag of the repository (`docker pull -a`), as dockerd does.
    """
    from dockyard.distribution.client import Credentials
    from dockyard.distribution.manifests import parse_platform
    from dockyard.distribution.progress import Progress
    from dockyard.distribution.pull import Puller

    platform = parse_platform(request.query["platform"]) if request.query.get("platform") else None
    parsed = reference.parse(_pull_ref(image, tag))
    all_tags = not tag and "@" not in image and reference.parse(image, default_tag=False).tag is None
    stream = JSONStream(request)
    puller = Puller(daemon.images, daemon.run_blocking, insecure=tuple(daemon.config.insecure_registries),
                    mirrors=tuple(daemon.config.registry_mirrors), platform=platform)
    credentials = Credentials.from_header(request.headers.get("X-Registry-Auth"))
    try:
        if all_tags:
            await _pull_all_tags(puller, parsed, credentials, Progress(stream.send))
        else:
            await puller.pull(parsed, credentials, Progress(stream.send))
    except DockyardError as e:
        if not stream.started:
            raise
        await stream.error(e.message)
        return await stream.finish()
    daemon.events.emit("image", "pull", parsed.familiar_name() if all_tags else parsed.familiar(),
                       {"name": parsed.familiar_name()})
    return await stream.finish()


async def _pull_all_tags(puller: Any, ref: reference.Reference, credentials: Any, progress: Any) -> None:
    """Every tag of ``ref``'s repository, one pull each; one final "Status:" line for the repository."""
    from dockyard.distribution.client import RegistryClient
    from dockyard.distribution.endpoints import endpoint_for
    from dockyard.distribution.progress import Progress

    async with RegistryClient(endpoint_for(ref.domain, puller.insecure), ref.path, credentials) as client:
        tags = await client.list_tags()
    newer = False

    async def send(message: dict[str, Any]) -> None:
        nonlocal newer
        status = str(message.get("status", ""))
        if status.startswith("Status: "):
            newer = newer or status.startswith("Status: Downloaded newer")
            return
        await progress.emit(message)

    for t in sorted(tags):
        await puller.pull(ref.with_tag(t), credentials, Progress(send))
    what = "Downloaded newer image" if newer else "Image is up to date"
    await progress.status(f"Status: {what} for {ref.familiar_name()}")


async def push_image(request: web.Request) -> web.StreamResponse:
    """POST /images/{name}/push?tag=: push to the registry; errors after the first line arrive in band."""
    from dockyard.distribution.client import Credentials
    from dockyard.distribution.progress import Progress
    from dockyard.distribution.push import Pusher, parse_push_ref

    daemon = daemon_of(request)
    header = request.headers.get("X-Registry-Auth")
    if header:
        credentials = Credentials.from_header(header)
    else:  # API < 1.x clients sent the AuthConfig as the body; nothing at all is dockerd's 400
        credentials = await _legacy_auth_body(request)
    ref = parse_push_ref(request.match_info["name"], request.query.get("tag", ""))
    stream = JSONStream(request)
    pusher = Pusher(daemon.images, daemon.run_blocking, insecure=tuple(daemon.config.insecure_registries))
    try:
        await pusher.push(ref, credentials, Progress(stream.send))
    except DockyardError as e:
        await stream.error(e.message)
        return await stream.finish()
    daemon.events.emit("image", "push", ref.familiar(), {"name": ref.familiar_name()})
    return await stream.finish()


async def _legacy_auth_body(request: web.Request) -> Any:
    import json

    from dockyard.distribution.client import Credentials

    raw = await request.read()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        reason = "EOF" if not raw.strip() else str(e)
        raise InvalidArgument(f"Bad parameters and missing X-Registry-Auth: {reason}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("Bad parameters and missing X-Registry-Auth: not an object")
    creds = Credentials(str(doc.get("username") or ""), str(doc.get("password") or ""),
                        str(doc.get("identitytoken") or ""))
    return creds if creds.username or creds.identity_token else None


async def distribution_inspect(request: web.Request) -> web.StreamResponse:
    """GET /distribution/{name}/json: the registry's descriptor and platforms for the reference."""
    from dockyard.distribution.client import Credentials
    from dockyard.distribution.inspect import inspect

    daemon = daemon_of(request)
    name = request.match_info["name"]
    try:
        ref = reference.parse(name)
    except InvalidArgument:
        raise InvalidArgument("invalid reference format") from None
    credentials = Credentials.from_header(request.headers.get("X-Registry-Auth"))
    doc = await inspect(ref, credentials, tuple(daemon.config.insecure_registries))
    return json_response(doc)


async def load_images(request: web.Request) -> web.StreamResponse:
    """POST /images/load: a `docker save` tar (or OCI layout tar); errors arrive in band."""
    daemon = daemon_of(request)
    stream = JSONStream(request)
    try:
        with await spool_body(request, daemon) as body:
            lines, events = await daemon.run_blocking(ops.load, daemon.images, body)
    except DockyardError as e:
        await stream.error(e.message)
        return await stream.finish()
    emit(daemon, events)
    for line in lines:
        await stream.send({"stream": line + "\n"})
    return await stream.finish()


async def save_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def save_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, query_list(request, "names"))


async def _save(request: web.Request, refs: list[str]) -> web.StreamResponse:
    daemon = daemon_of(request)
    events = await daemon.run_blocking(ops.check_save, daemon.images, refs)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile(dir=_spool_dir(daemon)) as tmp:
        await daemon.run_blocking(ops.save, daemon.images, refs, tmp)
        tmp.seek(0)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        while chunk := await loop.run_in_executor(None, tmp.read, CHUNK):
            await response.write(chunk)
    emit(daemon, events)
    await response.write_eof()
    return response


def add_routes(router: Router) -> None:
    router.add("GET", "/images/json", list_images)
    router.add("POST", "/images/create", create_image)
    router.add("POST", "/images/load", load_images)
    router.add("POST", "/images/prune", prune_images)
    router.add("GET", "/images/get", save_many)
    router.add("GET", "/images/{name:.+}/json", inspect_image)
    router.add("GET", "/images/{name:.+}/history", image_history)
    router.add("GET", "/images/{name:.+}/get", save_one)
    router.add("POST", "/images/{name:.+}/tag", tag_image)
    router.add("POST", "/images/{name:.+}/push", push_image)
    router.add("GET", "/distribution/{name:.+}/json", distribution_inspect)
    router.add("DELETE", "/images/{name:.+}", delete_image)
