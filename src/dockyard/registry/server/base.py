"""Shared pieces of the registry's HTTP handlers: the facade lookup, names, bodies, paging, errors.

Handlers stay thin: they parse the request, call the Registry facade and shape the answer.
Errors travel as RegistryError and are rendered once, by the middleware in app.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.errors import RegistryError

if TYPE_CHECKING:
    from dockyard.registry.store.registry import Registry

REGISTRY_KEY: web.AppKey["Registry"] = web.AppKey("registry")
CHUNK_SIZE = 1 << 20  # upload bodies are handed to the store up to 1 MiB at a time
OCTET_STREAM = "application/octet-stream"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def registry_of(request: web.Request) -> "Registry":
    """The Registry facade the app was built with."""
    return request.app[REGISTRY_KEY]


async def repo_name(request: web.Request) -> str:
    """The repository name of the route (may hold slashes), checked against the name grammar."""
    name = request.match_info["name"]
    await registry_of(request).check_name(name)
    return name


def check_digest(value: str | None) -> str:
    """``value`` if it is a well-formed digest, else DIGEST_INVALID (400)."""
    if not value or not digests.is_valid(value):
        raise errors.digest_invalid(f"invalid digest {value!r}" if value else "digest missing")
    return value


def check_reference(ref: str) -> str:
    """A manifest reference: a digest (DIGEST_INVALID) or a tag (TAG_INVALID)."""
    if ":" in ref:
        return check_digest(ref)
    if not _TAG.match(ref):
        raise errors.tag_invalid(f"invalid tag {ref!r}")
    return ref


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, never held whole."""
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        if chunk:
            yield chunk


def has_body(request: web.Request) -> bool:
    """True if the request carries a body (a Content-Length above 0, or chunked encoding)."""
    if request.content_length is not None:
        return request.content_length > 0
    return request.headers.get("Transfer-Encoding", "").lower() == "chunked"


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 once it exceeds ``limit`` bytes (manifests only)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> RegistryError:
    err = errors.manifest_invalid(f"manifest body larger than {limit} bytes")
    err.status = 413
    return err


def error_response(err: RegistryError) -> web.Response:
    """The spec's error body for ``err``, with its status."""
    return web.json_response({"errors": [err.to_json()]}, status=err.status)


def empty(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """A bodiless answer with Content-Length: 0 (aiohttp adds it)."""
    return web.Response(status=status, headers=headers or {})


def page_params(request: web.Request) -> tuple[int | None, str | None]:
    """``n`` and ``last`` of a paged list; a bad ``n`` is PAGINATION_NUMBER_INVALID (400)."""
    raw = request.query.get("n")
    n: int | None = None
    if raw is not None and raw != "":
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 0:
            raise errors.pagination_number_invalid(f"n={raw!r}")
    last = request.query.get("last") or None
    return n, last


def paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """The page of sorted ``items`` after ``last`` (exclusive), at most ``n``; and whether more follow."""
    if last is not None:
        items = [i for i in items if i > last]
    if n is None:
        return items, False
    return items[:n], n > 0 and len(items) > n


def next_link(path: str, n: int, last: str) -> str:
    """An RFC 5988 Link header value pointing at the next page."""
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'
