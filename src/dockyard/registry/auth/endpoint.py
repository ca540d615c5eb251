"""The built-in token issuer's endpoint: ``GET <realm path>?service=..&scope=..`` (token.md).

Credentials are Basic (checked against the issuer's htpasswd) or none (anonymous). The grant is
the intersection of what was asked and what the caller may do: a known user may pull, push and
delete any repository and read the catalog; anonymous callers may pull only when ``anonymouspull``
is on, and get nothing else. A partial (even empty) grant is not an error, as the spec says.
"""

from __future__ import annotations

import logging

from aiohttp import web

from dockyard.registry.auth.access import CATALOG, REPOSITORY_ACTIONS, Access, parse_scope
from dockyard.registry.auth.htpasswd import Htpasswd
from dockyard.registry.auth.middleware import basic_credentials
from dockyard.registry.auth.token import TokenIssuer

log = logging.getLogger("dockyard.registry.auth")


class TokenEndpoint:
    """Answers token requests for one service."""

    def __init__(self, issuer: TokenIssuer, htpasswd: Htpasswd, *, realm: str, anonymous_pull: bool) -> None:
        self.issuer = issuer
        self.htpasswd = htpasswd
        self.realm = realm
        self.anonymous_pull = anonymous_pull

    def allowed(self, access: Access, user: str | None) -> bool:
        """May ``user`` (None = anonymous) have ``access``?"""
        if access.type == "repository":
            if user is None:
                return self.anonymous_pull and access.action == "pull"
            return access.action in REPOSITORY_ACTIONS
        return user is not None and (access.type, access.name, access.action) == CATALOG

    def _refuse(self, reason: str) -> web.Response:
        """401 for bad credentials; ``details`` is the field Docker's client shows
        ("unauthorized: <details>"), as token servers such as Docker Hub's answer."""
        body = {"details": reason, "errors": [{"code": "UNAUTHORIZED", "message": reason, "detail": None}]}
        return web.json_response(body, status=401, headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'})

    async def handle(self, request: web.Request) -> web.Response:
        service = request.query.get("service")
        if service is not None and service != self.issuer.service:
            body = {"errors": [{"code": "UNSUPPORTED", "message": f"unknown service {service!r}", "detail": None}]}
            return web.json_response(body, status=400)
        user: str | None = None
        creds = basic_credentials(request)
        if creds is not None:
            if not await self.htpasswd.verify(*creds):
                log.warning("token request refused for user %r from %s", creds[0], request.remote)
                return self._refuse("incorrect username or password")
            user = creds[0]
        elif request.headers.get("Authorization"):
            return self._refuse("only Basic credentials are accepted here")
        asked = [a for scope in request.query.getall("scope", []) for a in parse_scope(scope)]
        granted = [a for a in asked if self.allowed(a, user)]
        return web.json_response(self.issuer.issue(user or "", granted))
