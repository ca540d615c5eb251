"""The repository catalog (Docker registry, not OCI): ``GET /v2/_catalog?n=&last=``.

Like distribution, a request without ``n`` gets a page of 100 and ``n`` is capped at 1000,
with a ``Link: rel="next"`` header when more names follow.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.server.base import next_link, page_params, paginate, registry_of

DEFAULT_PAGE = 100
MAX_PAGE = 1000


async def catalog(request: web.Request) -> web.StreamResponse:
    """GET /v2/_catalog -> {"repositories": [...]} in lexical order."""
    n, last = page_params(request)
    n = DEFAULT_PAGE if n is None else min(n, MAX_PAGE)
    names, more = paginate(await registry_of(request).catalog(), n, last)
    resp = web.json_response({"repositories": names})
    if more:
        resp.headers["Link"] = next_link("/v2/_catalog", n, names[-1])
    return resp
