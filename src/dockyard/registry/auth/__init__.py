"""Registry authentication: htpasswd (Basic) or Bearer tokens, optionally with a built-in issuer.

``build(settings)`` turns the config's ``auth`` section into an AuthSetup: the middleware that
guards ``/v2`` and, for a built-in issuer, the token route (the path of ``auth.token.realm``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from dockyard.errors import InvalidArgument
from dockyard.registry.auth.settings import AuthSettings, HtpasswdSettings, TokenSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AuthSetup:
    """What the app installs: a middleware and maybe a ``(path, handler)`` token route."""

    middleware: Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
    token_route: tuple[str, Handler] | None = None


def build(settings: AuthSettings) -> AuthSetup:
    """The middleware (and token route) for ``settings``; files are read now, errors name them."""
    from dockyard.registry.auth.htpasswd import Htpasswd
    from dockyard.registry.auth.middleware import BasicAuthenticator, auth_middleware

    if isinstance(settings, HtpasswdSettings):
        _must_exist(settings.path, "auth.htpasswd.path")
        return AuthSetup(auth_middleware(BasicAuthenticator(settings.realm, Htpasswd(settings.path))))
    return _build_token(settings)


def _build_token(settings: TokenSettings) -> AuthSetup:
    from dockyard.registry.auth.endpoint import TokenEndpoint
    from dockyard.registry.auth.htpasswd import Htpasswd
    from dockyard.registry.auth.middleware import TokenAuthenticator, auth_middleware
    from dockyard.registry.auth.token import TokenIssuer, TokenVerifier, load_certificates

    roots = load_certificates(settings.rootcertbundle) if settings.rootcertbundle else []
    route: tuple[str, Handler] | None = None
    keys = []
    if settings.builtin is not None:
        b = settings.builtin
        _must_exist(b.htpasswd, "auth.token.builtin.htpasswd")
        issuer = TokenIssuer(b.key, issuer=settings.issuer, service=settings.service, expiration=b.expiration,
                             certificate=b.certificate)
        keys.append(issuer.public_key)
        endpoint = TokenEndpoint(issuer, Htpasswd(b.htpasswd), realm=settings.realm,
                                 anonymous_pull=b.anonymous_pull)
        path = urlsplit(settings.realm).path or "/"
        if path == "/v2" or path.startswith("/v2/"):
            raise InvalidArgument("configuration: auth.token.realm must not be under /v2/")
        route = (path, endpoint.handle)
    verifier = TokenVerifier(issuer=settings.issuer, service=settings.service, roots=roots, keys=keys)
    authenticator = TokenAuthenticator(settings.realm, settings.service, verifier)
    return AuthSetup(auth_middleware(authenticator), route)


def _must_exist(path: str, key: str) -> None:
    import os

    if not os.path.isfile(path):
        raise InvalidArgument(f"configuration: {key} {path!r} is not a file", path=path)
