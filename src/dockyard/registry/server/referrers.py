"""Referrers (end-12a/12b, OCI 1.1): an image index of the manifests whose subject is <digest>."""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.registry.server.base import check_digest, registry_of, repo_name

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


async def list_referrers(request: web.Request) -> web.StreamResponse:
    """GET /v2/<name>/referrers/<digest>[?artifactType=]: never 404 for a known-good digest;
    filtering is announced with ``OCI-Filters-Applied: artifactType``."""
    name = await repo_name(request)
    digest = check_digest(request.match_info["digest"])
    artifact_type = request.query.get("artifactType") or None
    index = await registry_of(request).referrers(name, digest, artifact_type)
    resp = web.Response(body=json.dumps(index).encode(), content_type=INDEX_MEDIA_TYPE)
    if artifact_type is not None:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    return resp
