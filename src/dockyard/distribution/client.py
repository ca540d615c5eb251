"""HTTP to one registry repository over aiohttp: ping, auth challenges, manifests and blobs.

Auth follows the distribution token spec: a request answered 401 carries ``WWW-Authenticate``;
"Basic" is answered with the credentials from X-Registry-Auth, "Bearer" by fetching a token
from ``realm`` (with ``service`` and ``scope=repository:<path>:pull``, using the credentials as
Basic auth when there are any) and retrying once. The scheme is chosen by the /v2/ ping: https,
then http for insecure registries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import yarl

from dockyard.distribution.endpoints import Endpoint
from dockyard.errors import DockyardError, NotFound, Unauthorized, Unavailable

READ_BUFFER = 1 << 22  # bytes a response may buffer before reading pauses (aiohttp's default: 64 KiB)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    @classmethod
    def from_header(cls, value: str | None) -> Credentials | None:
        """Decode X-Registry-Auth (base64url JSON {username, password, identitytoken}); None if empty."""
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            doc = json.loads(raw or b"{}")
        except (ValueError, TypeError):
            return None
        if not isinstance(doc, dict):
            return None
        creds = cls(str(doc.get("username") or ""), str(doc.get("password") or ""),
                    str(doc.get("identitytoken") or ""))
        return creds if creds.username or creds.identity_token else None

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


class RegistryError(DockyardError):
    """A registry answered an error: ``status``, and the codes/messages of its error body."""

    def __init__(self, status: int, errors: list[tuple[str, str]], text: str) -> None:
        self.status, self.errors = status, errors
        summary = "; ".join(f"{code.lower().replace('_', ' ')}: {msg}" for code, msg in errors) or text
        super().__init__(summary or f"unexpected status {status}")


class RegistryClient:
    """One repository (``path``) on one endpoint; use ``async with``."""

    def __init__(self, endpoint: Endpoint, path: str, credentials: Credentials | None = None,
                 *, timeout: float = 60.0) -> None:
        self.endpoint, self.path, self.credentials = endpoint, path, credentials
        self.actions = "pull"  # token scope actions; a push asks for "pull,push"
        self.base = ""
        self._auth: str | None = None
        self._session = aiohttp.ClientSession(
            read_bufsize=READ_BUFFER,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    # -- connection and auth -------------------------------------------------------------------

    async def ping(self) -> None:
        """GET /v2/ on each candidate URL; the first that answers (any status) is used."""
        last: Exception | None = None
        for url in self.endpoint.urls:
            try:
                async with self._session.get(f"{url}/v2/", ssl=not self.endpoint.insecure) as r:
                    self.base = url
                    if r.status == 401:
                        await self._authenticate(r.headers.get("WWW-Authenticate", ""))
                    return
            except (aiohttp.ClientError, OSError) as e:
                last = e
        raise Unavailable(f"Get \"{self.endpoint.urls[-1]}/v2/\": {last}")

    async def _authenticate(self, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            self._auth = self.credentials.basic() if self.credentials else None
        elif scheme == "bearer":
            self._auth = "Bearer " + await self._token(params)

    async def _token(self, params: dict[str, str]) -> str:
        realm = params.get("realm", "")
        if not realm:
            raise Unauthorized("bearer challenge without realm")
        query = {k: v for k, v in (("service", params.get("service", "")),
                                   ("scope", params.get("scope") or f"repository:{self.path}:{self.actions}")) if v}
        headers = {"Authorization": self.credentials.basic()} if self.credentials and self.credentials.username else {}
        async with self._session.get(realm, params=query, headers=headers, ssl=self._ssl()) as r:
            if r.status != 200:
                raise Unauthorized(f"token request to {realm} failed: {r.status} {await r.text()}")
            doc = await r.json(content_type=None)
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise Unauthorized(f"token response from {realm} has no token")
        return str(token)

    def _ssl(self) -> bool:
        return not self.endpoint.insecure

    @asynccontextmanager
    async def request(self, method: str, path: str, headers: dict[str, str] | None = None
                      ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request under /v2/<repo>/ with auth; one retry after a 401 challenge."""
        if not self.base:
            await self.ping()
        url = f"{self.base}/v2/{self.path}/{path}"
        for attempt in range(2):
            hdrs = {**(headers or {}), **({"Authorization": self._auth} if self._auth else {})}
            async with self._session.request(method, url, headers=hdrs, ssl=self._ssl()) as r:
                if r.status == 401 and attempt == 0 and "WWW-Authenticate" in r.headers:
                    await self._authenticate(r.headers["WWW-Authenticate"])
                    continue
                yield r
                return

    # -- resources -----------------------------------------------------------------------------

    async def manifest(self, ref: str, accept: str) -> tuple[bytes, str]:
        """The bytes and Content-Type of manifest ``ref`` (tag or digest); RegistryError otherwise."""
        async with self.request("GET", f"manifests/{ref}", {"Accept": accept}) as r:
            body = await r.read()
            if r.status != 200:
                raise error_of(r.status, body)
            return body, r.headers.get("Content-Type", "").split(";")[0].strip()

    async def blob_bytes(self, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (a config) whole."""
        async with self.blob(digest) as r:
            if r.status != 200:
                raise error_of(r.status, await r.read())
            return await r.content.read(limit)

    def blob(self, digest: str, offset: int = 0) -> Any:
        """GET the blob from ``offset`` (a Range request when > 0); the caller checks 200/206."""
        return self.request("GET", f"blobs/{digest}", {"Range": f"bytes={offset}-"} if offset else None)

    # -- uploads (push) ------------------------------------------------------------------------

    def _url(self, location: str) -> yarl.URL:
        """An upload Location (absolute, or a path on this registry) as a URL, its query kept verbatim."""
        if location.startswith("/"):
            location = self.base + location
        return yarl.URL(location, encoded=True)

    @asynccontextmanager
    async def request_url(self, method: str, location: str, headers: dict[str, str] | None = None,
                          data: Any = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request to ``location`` (an upload URL) with auth; a 401 is retried once only without a body stream."""
        if not self.base:
            await self.ping()
        for attempt in range(2):
            hdrs = {**(headers or {}), **({"Authorization": self._auth} if self._auth else {})}
            async with self._session.request(method, self._url(location), headers=hdrs, data=data,
                                             ssl=self._ssl()) as r:
                retry = attempt == 0 and (data is None or isinstance(data, bytes))
                if r.status == 401 and retry and "WWW-Authenticate" in r.headers:
                    await self._authenticate(r.headers["WWW-Authenticate"])
                    continue
                yield r
                return

    async def blob_size(self, digest: str) -> int | None:
        """HEAD the blob in this repository: its size, or None when the registry does not have it here."""
        async with self.request("HEAD", f"blobs/{digest}") as r:
            if r.status == 404:
                return None
            if r.status != 200:
                raise self.push_error(r.status, await r.read(), r.headers)
            return int(r.headers.get("Content-Length") or 0)

    async def start_upload(self, mount: str | None = None, source: str | None = None) -> tuple[bool, str]:
        """POST uploads/ (with ``mount``/``from`` when given): (mounted, location of the blob or the upload)."""
        query = f"?mount={mount}&from={source}" if mount and source else ""
        async with self.request("POST", f"blobs/uploads/{query}", {"Content-Length": "0"}) as r:
            body = await r.read()
            if r.status == 201 and mount:
                return True, r.headers.get("Location", "")
            if r.status != 202:
                raise self.push_error(r.status, body, r.headers)
            return False, r.headers["Location"]

    async def patch_upload(self, location: str, chunks: Any) -> str:
        """PATCH the body (bytes or an async iterator, sent chunked) to the upload: its next location."""
        headers = {"Content-Type": "application/octet-stream"}
        async with self.request_url("PATCH", location, headers, chunks) as r:
            body = await r.read()
            if r.status not in (202, 204):
                raise self.push_error(r.status, body, r.headers)
            return r.headers.get("Location") or location

    async def finish_upload(self, location: str, digest: str, data: bytes = b"") -> None:
        """PUT ``?digest=`` (with the last or only chunk): the registry verifies and commits the blob."""
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream"}
        async with self.request_url("PUT", f"{location}{sep}digest={digest}", headers, data) as r:
            body = await r.read()
            if r.status not in (201, 204):
                raise self.push_error(r.status, body, r.headers)

    async def cancel_upload(self, location: str) -> None:
        try:
            async with self.request_url("DELETE", location) as r:
                await r.read()
        except (aiohttp.ClientError, OSError):
            pass

    async def put_manifest(self, ref: str, data: bytes, media_type: str) -> str:
        """PUT the manifest's exact bytes under ``ref``: the Docker-Content-Digest answered."""
        async with self.request_url("PUT", f"/v2/{self.path}/manifests/{ref}", {"Content-Type": media_type},
                                    data) as r:
            body = await r.read()
            if r.status not in (200, 201):
                raise self.push_error(r.status, body, r.headers)
            return r.headers.get("Docker-Content-Digest") or digest_of(data)

    async def list_tags(self) -> list[str]:
        """Every tag of the repository (GET tags/list, following Link pages)."""
        tags: list[str] = []
        path = f"/v2/{self.path}/tags/list"
        while path:
            async with self.request_url("GET", path) as r:
                body = await r.read()
                if r.status != 200:
                    raise error_of(r.status, body)
                tags += json.loads(body).get("tags") or []
                link = r.headers.get("Link", "")
            path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
        return tags

    def push_error(self, status: int, body: bytes, headers: Any) -> DockyardError:
        """A failed push request as dockerd reports it ("no basic auth credentials", "denied: ...")."""
        if status == 401 and not (self.credentials and self.credentials.username):
            scheme, _ = parse_challenge(headers.get("WWW-Authenticate", ""))
            if scheme == "basic":
                return Unauthorized("no basic auth credentials")
        scheme, params = parse_challenge(headers.get("WWW-Authenticate", ""))
        oauth = {"insufficient_scope": ("denied", "requested access to the resource is denied"),
                 "invalid_token": ("unauthorized", "authentication required")}.get(params.get("error", ""))
        if 400 <= status < 500 and scheme == "bearer" and oauth:  # RFC 6750 errors come first, as in Docker
            return Unauthorized(f"{oauth[0]}: {params.get('error_description') or oauth[1]}")
        err = error_of(status, body)
        if status == 401 and not err.errors:  # a HEAD, or a body that is not an error list
            return Unauthorized("unauthorized: authentication required")
        if len(err.errors) > 1:  # dockerd reports the first one
            return RegistryError(status, err.errors[:1], "")
        return err


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_of(status: int, body: bytes) -> RegistryError:
    """The registry's error body ({"errors": [{code, message}]}) as a RegistryError."""
    errors: list[tuple[str, str]] = []
    try:
        doc = json.loads(body)
        errors = [(str(e.get("code", "UNKNOWN")), str(e.get("message", ""))) for e in doc.get("errors", [])]
    except (ValueError, AttributeError):
        pass
    return RegistryError(status, errors, body.decode(errors="replace").strip()[:200])


def not_found(familiar: str, e: RegistryError) -> DockyardError:
    """dockerd's texts for a manifest that is not there, or a repository we may not read."""
    if e.status == 404:
        return NotFound(f"manifest for {familiar} not found: {e.message}", id=familiar)
    if e.status in (401, 403):
        return NotFound(f"pull access denied for {familiar.rsplit(':', 1)[0].split('@')[0]}, repository does not "
                         f"exist or may require 'docker login': {e.message}",
                        id=familiar)
    return e
