"""Manifests (end-3, end-7, end-9): stored and served byte for byte with their media type.

Bodies are capped at 4 MiB (distribution's limit); a larger one is refused with 413 and
MANIFEST_INVALID (the OCI spec's status; distribution itself answers 400 with the same code).
"""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.server.base import check_reference, empty, read_capped, registry_of, repo_name

MAX_MANIFEST_SIZE = 4 << 20


async def get_manifest(request: web.Request) -> web.StreamResponse:
    """GET/HEAD /v2/<name>/manifests/<reference>: the exact stored bytes, Content-Type = media type."""
    name = await repo_name(request)
    ref = check_reference(request.match_info["reference"])
    data, media_type, digest = await registry_of(request).get_manifest(name, ref)
    headers = {"Content-Type": media_type, "Docker-Content-Digest": digest, "ETag": f'"{digest}"'}
    if request.method == "HEAD":
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write_eof()
        return resp
    return web.Response(body=data, headers=headers)


async def put_manifest(request: web.Request) -> web.StreamResponse:
    """PUT /v2/<name>/manifests/<reference>: 201 with Location, digest and OCI-Subject if any."""
    name = await repo_name(request)
    ref = check_reference(request.match_info["reference"])
    data = await read_capped(request, MAX_MANIFEST_SIZE)
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip()
    digest, subject = await registry_of(request).put_manifest(name, ref, data, content_type)
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
    if subject:
        headers["OCI-Subject"] = subject
    return empty(201, headers)


async def delete_manifest(request: web.Request) -> web.StreamResponse:
    """DELETE /v2/<name>/manifests/<reference>: by digest (the manifest) or tag (untag), 202."""
    name = await repo_name(request)
    ref = check_reference(request.match_info["reference"])
    await registry_of(request).delete_manifest(name, ref)
    return empty(202)
