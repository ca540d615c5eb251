"""Tag listing (end-8a/8b): lexical order, ``n``/``last`` paging with a ``Link: rel="next"`` header."""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.server.base import next_link, page_params, paginate, registry_of, repo_name


async def list_tags(request: web.Request) -> web.StreamResponse:
    """GET /v2/<name>/tags/list[?n=&last=] -> {"name", "tags"}; n=0 gives an empty list, no Link."""
    name = await repo_name(request)
    n, last = page_params(request)
    tags, more = paginate(await registry_of(request).tags(name), n, last)
    resp = web.json_response({"name": name, "tags": tags})
    if more and n is not None:
        resp.headers["Link"] = next_link(f"/v2/{name}/tags/list", n, tags[-1])
    return resp
