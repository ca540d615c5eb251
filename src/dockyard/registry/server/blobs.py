"""Blob GET / HEAD / DELETE (end-2, end-10): sendfile when the driver has a real file, else a stream.

Range requests get 206 with Content-Range (resumable pulls); an unsatisfiable range gets 416.
"""

from __future__ import annotations

import re

from aiohttp import web

from dockyard.registry import errors
from dockyard.registry.errors import RegistryError
from dockyard.registry.server.base import OCTET_STREAM, check_digest, empty, error_response, registry_of, repo_name

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _blob_headers(digest: str) -> dict[str, str]:
    return {"Docker-Content-Digest": digest, "Content-Type": OCTET_STREAM, "Accept-Ranges": "bytes",
            "Cache-Control": "max-age=31536000", "ETag": f'"{digest}"'}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range, None for no range; RANGE_INVALID (416)
    when malformed or unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (m.group(1) == "" and m.group(2) == ""):
        raise _bad_range(header, size)
    if m.group(1) == "":  # suffix: the last N bytes
        length = int(m.group(2))
        if length == 0:
            raise _bad_range(header, size)
        return max(0, size - length), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise _bad_range(header, size)
    return start, min(end, size - 1)


def _bad_range(header: str, size: int) -> RegistryError:
    return errors.range_invalid(f"range {header!r} of a {size}-byte blob")


async def get_blob(request: web.Request) -> web.StreamResponse:
    """GET/HEAD /v2/<name>/blobs/<digest>."""
    name = await repo_name(request)
    digest = check_digest(request.match_info["digest"])
    registry = registry_of(request)
    size = await registry.blob_size(name, digest)
    headers = _blob_headers(digest)
    path = await registry.blob_file(name, digest)
    if path is not None:
        return web.FileResponse(path, chunk_size=1 << 16, headers=headers)
    try:
        span = parse_range(request.headers.get("Range"), size) if request.method == "GET" else None
    except RegistryError as e:
        refused = error_response(e)
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    resp = web.StreamResponse(status=200 if span is None else 206, headers=headers)
    start, end = (0, size - 1) if span is None else span
    if span is not None:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    resp.content_length = end - start + 1 if size else 0
    await resp.prepare(request)
    if request.method == "GET" and size:
        async for chunk in registry.blob_reader(name, digest, start, end - start + 1):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request) -> web.StreamResponse:
    """DELETE /v2/<name>/blobs/<digest>: unlink the blob from the repository (202)."""
    name = await repo_name(request)
    digest = check_digest(request.match_info["digest"])
    await registry_of(request).delete_blob(name, digest)
    return empty(202, {"Docker-Content-Digest": digest})
