"""``POST /auth``: check credentials against a registry the way dockerd's login does.

GET /v2/ (https, then http for insecure and loopback registries); a Basic challenge is answered
with the credentials, a Bearer challenge by fetching a token from the realm (``account``,
``client_id=docker``, ``offline_token=true``, no scope) with the credentials as Basic auth, then
GET /v2/ again with the token. dockerd's failure texts: "login attempt to <url>/v2/ failed with
status: 401 Unauthorized" (HTTP 500, as dockerd 20.10) when the registry refuses, and
``Get "<url>/v2/": <code>: <message>`` (HTTP 401) when the token service does.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import aiohttp

from dockyard.distribution.client import Credentials, error_of, parse_challenge
from dockyard.distribution.endpoints import endpoint_for
from dockyard.errors import DockyardError, InvalidArgument, Unauthorized, Unavailable
from dockyard.oci.reference import DEFAULT_DOMAIN

HUB_ALIASES = ("index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class LoginResult:
    status: str
    identity_token: str


def server_domain(serveraddress: str) -> str:
    """"https://index.docker.io/v1/" -> "docker.io"; "http://host:5000/x" -> "host:5000"."""
    host = serveraddress.strip().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not host or host in HUB_ALIASES:
        return DEFAULT_DOMAIN
    return host


def credentials_of(body: object) -> tuple[str, Credentials]:
    """(domain, credentials) from an AuthConfig JSON body."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid auth configuration: not a JSON object")
    creds = Credentials(str(body.get("username") or ""), str(body.get("password") or ""),
                        str(body.get("identitytoken") or ""))
    return server_domain(str(body.get("serveraddress") or "")), creds


def _status_error(url: str, status: int) -> DockyardError:
    """dockerd 20.10 returns this one as a plain error: HTTP 500."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return DockyardError(f"login attempt to {url} failed with status: {status} {phrase}".rstrip())


async def login(domain: str, creds: Credentials, insecure: tuple[str, ...] = (), timeout: float = 30.0) -> LoginResult:
    """Log in to ``domain``; Unauthorized with dockerd's message when the registry says no."""
    endpoint = endpoint_for(domain, insecure)
    last: Exception | None = None
    ssl = not endpoint.insecure
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        for base in endpoint.urls:
            url = f"{base}/v2/"
            try:
                async with session.get(url, ssl=ssl) as r:
                    await r.read()
                    status, challenge = r.status, r.headers.get("WWW-Authenticate", "")
            except (aiohttp.ClientError, OSError) as e:
                last = e
                continue
            return await _answer(session, url, status, challenge, creds, ssl)
    raise Unavailable(f'Get "{endpoint.urls[-1]}/v2/": {last}')


async def _answer(session: aiohttp.ClientSession, url: str, status: int, challenge: str, creds: Credentials,
                  ssl: bool) -> LoginResult:
    if status == 200:
        return LoginResult("Login Succeeded", "")
    if status != 401:
        raise _status_error(url, status)
    scheme, params = parse_challenge(challenge)
    identity = ""
    if scheme == "bearer":
        token, identity = await _token(session, url, params, creds, ssl)
        authorization = f"Bearer {token}"
    else:
        authorization = creds.basic()
    async with session.get(url, headers={"Authorization": authorization}, ssl=ssl) as r:
        await r.read()
        if r.status != 200:
            raise _status_error(url, r.status)
    return LoginResult("Login Succeeded", identity)


async def _token(session: aiohttp.ClientSession, url: str, params: dict[str, str], creds: Credentials,
                 ssl: bool) -> tuple[str, str]:
    """(access token, refresh token or "") from the challenge's realm."""
    realm = params.get("realm", "")
    query = {"client_id": "docker", "offline_token": "true"}
    if params.get("service"):
        query["service"] = params["service"]
    if creds.username:
        query["account"] = creds.username
    async with session.get(realm, params=query, headers={"Authorization": creds.basic()}, ssl=ssl) as r:
        body = await r.read()
        if r.status != 200:
            raise Unauthorized(f'Get "{url}": {error_of(r.status, body).message}')
        doc = await r.json(content_type=None)
    token = str(doc.get("token") or doc.get("access_token") or "")
    if not token:
        raise Unauthorized(f'Get "{url}": token response from {realm} has no token')
    return token, str(doc.get("refresh_token") or "")
