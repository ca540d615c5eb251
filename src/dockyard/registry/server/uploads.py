"""Blob uploads (end-4a/4b, end-5, end-6, end-11, end-13, cancel): sessions driven by the facade.

Bodies are streamed to the store chunk by chunk. Locations are relative
(``/v2/<name>/blobs/uploads/<uuid>``); every upload answer carries ``Docker-Upload-UUID`` and
``Range: 0-<last byte>`` (``0-0`` when empty, as distribution does).
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from dockyard.registry import errors
from dockyard.registry.server.base import body_chunks, check_digest, empty, has_body, registry_of, repo_name

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")


def upload_location(name: str, uuid: str) -> str:
    """The relative URL of an upload session."""
    return f"/v2/{name}/blobs/uploads/{uuid}"


def blob_location(name: str, digest: str) -> str:
    """The relative URL of a blob."""
    return f"/v2/{name}/blobs/{digest}"


def _session_headers(name: str, uuid: str, offset: int) -> dict[str, str]:
    return {"Location": upload_location(name, uuid), "Docker-Upload-UUID": uuid,
            "Range": f"0-{max(offset - 1, 0)}"}


def _created(name: str, digest: str) -> web.Response:
    return empty(201, {"Location": blob_location(name, digest), "Docker-Content-Digest": digest})


async def start_upload(request: web.Request) -> web.StreamResponse:
    """POST /v2/<name>/blobs/uploads/: a session (202), a monolithic upload (?digest=, 201) or a
    cross-repository mount (?mount=&from=, 201; 202 with a session when it cannot mount)."""
    name = await repo_name(request)
    registry = registry_of(request)
    mount = request.query.get("mount")
    if mount is not None:
        digest = check_digest(mount)
        source = request.query.get("from") or None
        if source is not None:
            await registry.check_name(source)
        if await registry.mount_blob(name, digest, source):
            return _created(name, digest)
    elif "digest" in request.query:
        digest = check_digest(request.query["digest"])
        uuid = await registry.start_upload(name)
        await _finish(request, name, uuid, digest)
        return _created(name, digest)
    uuid = await registry.start_upload(name)
    return empty(202, _session_headers(name, uuid, 0))


async def _finish(request: web.Request, name: str, uuid: str, digest: str) -> None:
    """Close the session with the body as its last chunk; a failure other than the store's own
    verdict (e.g. the client went away) cancels the session rather than leave it half written."""
    registry = registry_of(request)
    chunks = body_chunks(request) if has_body(request) else None
    try:
        await registry.finish_upload(name, uuid, digest, chunks)
    except (ConnectionError, HttpProcessingError, asyncio.CancelledError):
        await _cancel_quietly(request, name, uuid)
        raise


async def _cancel_quietly(request: web.Request, name: str, uuid: str) -> None:
    try:
        await registry_of(request).cancel_upload(name, uuid)
    except Exception:  # the session may be gone already; the original error matters
        pass


def parse_content_range(request: web.Request) -> int | None:
    """The start offset of a PATCH's ``Content-Range: <start>-<end>``, None without one.

    A malformed or inverted range is RANGE_INVALID (416); a Content-Length that disagrees with
    the range is SIZE_INVALID (400)."""
    header = request.headers.get("Content-Range")
    if not header:
        return None
    m = _CONTENT_RANGE.match(header.strip())
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise errors.range_invalid(f"Content-Range {header!r}")
    start, end = int(m.group(1)), int(m.group(2))
    length = request.content_length
    if length is not None and length != end - start + 1:
        raise errors.size_invalid(f"Content-Range {header!r} but Content-Length {length}")
    return start


async def patch_upload(request: web.Request) -> web.StreamResponse:
    """PATCH /v2/<name>/blobs/uploads/<uuid>: append a chunk (streamed or ranged), 202."""
    name = await repo_name(request)
    uuid = request.match_info["uuid"]
    start = parse_content_range(request)
    offset = await registry_of(request).append_upload(name, uuid, body_chunks(request), start)
    return empty(202, _session_headers(name, uuid, offset))


async def put_upload(request: web.Request) -> web.StreamResponse:
    """PUT /v2/<name>/blobs/uploads/<uuid>?digest=: close the session (optional last chunk), 201."""
    name = await repo_name(request)
    uuid = request.match_info["uuid"]
    digest = check_digest(request.query.get("digest"))
    await registry_of(request).upload_offset(name, uuid)  # BLOB_UPLOAD_UNKNOWN before reading a body
    await _finish(request, name, uuid, digest)
    return _created(name, digest)


async def upload_status(request: web.Request) -> web.StreamResponse:
    """GET /v2/<name>/blobs/uploads/<uuid>: where a session stands (204, Range), for resuming."""
    name = await repo_name(request)
    uuid = request.match_info["uuid"]
    offset = await registry_of(request).upload_offset(name, uuid)
    return empty(204, _session_headers(name, uuid, offset))


async def cancel_upload(request: web.Request) -> web.StreamResponse:
    """DELETE /v2/<name>/blobs/uploads/<uuid>: drop the session (204)."""
    name = await repo_name(request)
    uuid = request.match_info["uuid"]
    await registry_of(request).cancel_upload(name, uuid)
    return empty(204)
