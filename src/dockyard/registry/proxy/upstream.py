"""The upstream registry as the proxy sees it: manifests, blob sizes and streams, tags.

A thin layer over the engine's registry client (dockyard.distribution.client.RegistryClient: ping,
Basic/Bearer challenges, token scopes), one client per repository because tokens are scoped to a
repository. Every failure becomes one of two errors: UpstreamMissing (the upstream answered that
the thing is not there: 404) or UpstreamDown (no answer, a 5xx, refused credentials, a bad body).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from urllib.parse import urlsplit

import aiohttp

from dockyard.distribution.client import (
    Credentials,
    RegistryClient,
    RegistryError,
    error_of,
)
from dockyard.distribution.endpoints import Endpoint
from dockyard.errors import DockyardError
from dockyard.oci import mediatypes as mt
from dockyard.registry.proxy.settings import ProxySettings

ACCEPT = f"{mt.OCI_INDEX}, {mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST_LIST}, {mt.DOCKER_MANIFEST}"
CHUNK_SIZE = 1 << 20
_MAX_TAG_PAGES = 100
_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError, DockyardError)


class UpstreamError(Exception):
    """Base of the two ways the upstream can fail us."""


class UpstreamMissing(UpstreamError):
    """The upstream answered 404: it does not have the manifest, blob or repository."""


class UpstreamDown(UpstreamError):
    """The upstream could not be asked (refused, timed out, 5xx, credentials refused)."""


def _failure(what: str, status: int, body: bytes = b"") -> UpstreamError:
    if status == 404:
        return UpstreamMissing(f"{what}: not found upstream")
    detail = str(error_of(status, body)) if body else f"status {status}"
    return UpstreamDown(f"{what}: upstream answered {status}: {detail}")


class Upstream:
    """Reads from the registry at ``settings.remoteurl`` with its credentials."""

    def __init__(self, settings: ProxySettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        host = urlsplit(settings.remoteurl).netloc
        self.endpoint = Endpoint(host, host, False, base=settings.remoteurl)
        self.credentials = Credentials(settings.username, settings.password) if settings.username else None
        self.timeout = timeout
        self._clients: dict[str, RegistryClient] = {}

    def _client(self, repo: str) -> RegistryClient:
        client = self._clients.get(repo)
        if client is None:
            client = RegistryClient(self.endpoint, repo, self.credentials, timeout=self.timeout)
            self._clients[repo] = client
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def _down(self, what: str, e: BaseException) -> UpstreamDown:
        return UpstreamDown(f"{what}: upstream registry {self.settings.remoteurl} unavailable: {e or type(e).__name__}")

    async def manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        """(bytes, Content-Type) of manifest ``ref`` in ``repo``."""
        what = f"manifest {repo}:{ref}"
        try:
            return await self._client(repo).manifest(ref, ACCEPT)
        except RegistryError as e:
            if e.status == 404:
                raise UpstreamMissing(f"{what}: not found upstream") from None
            raise UpstreamDown(f"{what}: upstream answered {e.status}: {e}") from None
        except _FAILURES as e:
            raise self._down(what, e) from None

    async def manifest_digest(self, repo: str, ref: str) -> str | None:
        """The digest upstream's HEAD reports for ``ref`` (None when it sends no Docker-Content-Digest)."""
        what = f"manifest {repo}:{ref}"
        try:
            async with self._client(repo).request("HEAD", f"manifests/{ref}", {"Accept": ACCEPT}) as r:
                if r.status != 200:
                    raise _failure(what, r.status)
                return r.headers.get("Docker-Content-Digest") or None
        except _FAILURES as e:
            raise self._down(what, e) from None

    async def blob_size(self, repo: str, digest: str) -> int:
        """The size upstream's HEAD reports for blob ``digest`` of ``repo``."""
        what = f"blob {digest} of {repo}"
        try:
            async with self._client(repo).request("HEAD", f"blobs/{digest}") as r:
                if r.status != 200:
                    raise _failure(what, r.status)
                if r.content_length is None:
                    raise UpstreamDown(f"{what}: upstream sent no Content-Length")
                return r.content_length
        except _FAILURES as e:
            raise self._down(what, e) from None

    async def blob(self, repo: str, digest: str) -> AsyncGenerator[bytes, None]:
        """The body of blob ``digest`` as chunks; use under contextlib.aclosing so the response is
        released when the reader stops early."""
        what = f"blob {digest} of {repo}"
        try:
            async with self._client(repo).blob(digest) as r:
                if r.status != 200:
                    raise _failure(what, r.status, await r.content.read(1 << 16))
                async for chunk in r.content.iter_chunked(CHUNK_SIZE):
                    yield chunk
        except _FAILURES as e:
            raise self._down(what, e) from None

    async def tags(self, repo: str) -> list[str]:
        """Every tag upstream lists for ``repo`` (following Link rel="next" pages)."""
        what = f"tags of {repo}"
        found: list[str] = []
        query = "tags/list"
        try:
            for _ in range(_MAX_TAG_PAGES):
                async with self._client(repo).request("GET", query) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise _failure(what, r.status, body)
                    doc = await r.json(content_type=None)
                    link = r.headers.get("Link", "")
                found += [str(t) for t in (doc.get("tags") or []) if isinstance(t, str)]
                query = _next_query(link)
                if not query:
                    break
        except (ValueError, AttributeError) as e:
            raise UpstreamDown(f"{what}: upstream sent a bad tag list: {e}") from None
        except _FAILURES as e:
            raise self._down(what, e) from None
        return sorted(set(found))


def _next_query(link: str) -> str:
    """``tags/list?<query>`` of a ``Link: </v2/<name>/tags/list?...>; rel="next"`` header, "" if none."""
    if 'rel="next"' not in link or "<" not in link:
        return ""
    target = link[link.index("<") + 1:link.index(">")]
    query = urlsplit(target).query
    return f"tags/list?{query}" if query else ""
