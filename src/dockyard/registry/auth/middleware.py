"""The authentication middleware: every ``/v2`` request proves who it is (Basic) or what it may do
(Bearer) before any handler runs; anything else (the built-in token endpoint) passes through.

A refusal is 401 with distribution's ``WWW-Authenticate`` challenge and an UNAUTHORIZED error body
whose detail lists the access the request needs.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from dockyard.registry.auth.access import Access, missing, required, scope_string
from dockyard.registry.auth.htpasswd import Htpasswd
from dockyard.registry.auth.token import TokenError, TokenVerifier

log = logging.getLogger("dockyard.registry.auth")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Authenticator(Protocol):
    """Decides one request: None lets it through, a response refuses it."""

    async def check(self, request: web.Request, needed: list[Access]) -> web.Response | None: ...


def unauthorized(challenge: str, needed: list[Access] | None, message: str = "authentication required"
                 ) -> web.Response:
    """401 with ``challenge`` and an UNAUTHORIZED body listing ``needed`` (null when None)."""
    detail = [a.detail() for a in needed] if needed else None
    body = {"errors": [{"code": "UNAUTHORIZED", "message": message, "detail": detail}]}
    return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic`` header, None if absent or malformed."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class BasicAuthenticator:
    """htpasswd users: any known user with the right password may do anything."""

    def __init__(self, realm: str, htpasswd: Htpasswd) -> None:
        self.realm = realm
        self.htpasswd = htpasswd

    async def check(self, request: web.Request, needed: list[Access]) -> web.Response | None:
        creds = basic_credentials(request)
        if creds is not None and await self.htpasswd.verify(*creds):
            return None
        if creds is not None:
            log.warning("basic auth refused for user %r from %s", creds[0], request.remote)
        return unauthorized(f'Basic realm="{_quote(self.realm)}"', None)


class TokenAuthenticator:
    """Bearer JWTs whose ``access`` claim must cover what the request needs."""

    def __init__(self, realm: str, service: str, verifier: TokenVerifier) -> None:
        self.realm = realm
        self.service = service
        self.verifier = verifier

    def challenge(self, needed: list[Access], error: str | None = None) -> str:
        parts = [f'realm="{_quote(self.realm)}"', f'service="{_quote(self.service)}"']
        if needed:
            parts.append(f'scope="{_quote(scope_string(needed))}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    async def check(self, request: web.Request, needed: list[Access]) -> web.Response | None:
        token = bearer_token(request)
        if token is None:
            return unauthorized(self.challenge(needed), needed)
        try:
            granted = self.verifier.verify(token)
        except TokenError as e:
            log.warning("token refused from %s: %s", request.remote, e)
            return unauthorized(self.challenge(needed, "invalid_token"), needed)
        lacking = missing(needed, granted)
        if lacking:
            return unauthorized(self.challenge(needed, "insufficient_scope"), lacking)
        return None


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def auth_middleware(authenticator: Authenticator) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware guarding every path under ``/v2`` with ``authenticator``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/v2" or request.path.startswith("/v2/"):
            refusal = await authenticator.check(request, required(request))
            if refusal is not None:
                return refusal
        return await handler(request)

    return middleware
