"""Registry auth: htpasswd Basic, Bearer JWT verification with per-request scopes, the built-in
token issuer, and the config sections (auth, http.tls) — over the real app on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from dockyard.errors import InvalidArgument
from dockyard.registry import config as registry_config
from dockyard.registry.auth import AuthSetup, build
from dockyard.registry.auth.access import Access, missing, parse_scope, scope_string, to_claims
from dockyard.registry.auth.htpasswd import Htpasswd, hash_password, parse
from dockyard.registry.auth.settings import (
    BuiltinIssuerSettings,
    HtpasswdSettings,
    TlsSettings,
    TokenSettings,
)
from dockyard.registry.auth.token import TokenError, TokenIssuer, TokenVerifier
from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store.registry import Registry

Test = Callable[[TestClient], Awaitable[None]]
REALM = "http://127.0.0.1/auth/token"


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = tempfile.mkdtemp(prefix="dockyard-reg-auth-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def run(setup: AuthSetup, test: Test) -> None:
    async def main() -> None:
        app = create_app(Registry(InMemoryDriver()), auth=setup)
        server = TestServer(app)
        await server.start_server(**runner_options())
        async with TestClient(server) as client:
            await test(client)

    asyncio.run(main())


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_htpasswd(path: Path, **users: str) -> Path:
    path.write_text("".join(f"{u}:{hash_password(p, rounds=4)}\n" for u, p in users.items()))
    return path


def write_key(path: Path, kind: str = "rsa") -> Any:
    key: Any = (rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def self_signed(key: Any, name: str = "token-signer") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


async def error_body(resp: Any) -> dict[str, Any]:
    body = await resp.json()
    assert len(body["errors"]) == 1
    return dict(body["errors"][0])


# -- access ----------------------------------------------------------------------------------------
def test_scope_parse_and_format() -> None:
    items = parse_scope("repository:a/b:pull,push registry:catalog:* bogus repository:host:5000/x:pull")
    assert items == [Access("repository", "a/b", "pull"), Access("repository", "a/b", "push"),
                     Access("registry", "catalog", "*"), Access("repository", "host:5000/x", "pull")]
    assert scope_string(items) == "repository:a/b:pull,push registry:catalog:* repository:host:5000/x:pull"
    assert to_claims(items[:2]) == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]
    granted = {Access("repository", "a/b", "*")}
    assert missing(items[:2], granted) == []
    assert missing([Access("repository", "c", "pull")], granted) == [Access("repository", "c", "pull")]


# -- htpasswd --------------------------------------------------------------------------------------
def test_htpasswd_bcrypt_only_and_reload(tmp: Path) -> None:
    path = write_htpasswd(tmp / "htpasswd", alice="secret")
    with open(path, "a") as f:
        f.write("# comment\nmd5user:$apr1$abc$def\nnocolon\n")
    assert list(parse(path.read_text())) == ["alice"]
    store = Htpasswd(str(path))

    async def check() -> None:
        assert await store.verify("alice", "secret")
        assert await store.verify("alice", "secret")  # cached
        assert not await store.verify("alice", "wrong")
        assert not await store.verify("md5user", "x")
        assert not await store.verify("bob", "secret")
        write_htpasswd(path, bob="pw")
        import os
        os.utime(path, (1, 1))  # a different mtime even within the same second
        assert await store.verify("bob", "pw")
        assert not await store.verify("alice", "secret")

    asyncio.run(check())


def test_htpasswd_apache_2y_prefix(tmp: Path) -> None:
    hashed = hash_password("pw", rounds=4).replace("$2b$", "$2y$", 1)
    (tmp / "h").write_text(f"u:{hashed}\n")
    assert asyncio.run(Htpasswd(str(tmp / "h")).verify("u", "pw"))


# -- Basic auth over HTTP --------------------------------------------------------------------------
def test_basic_auth_challenge_and_access(tmp: Path) -> None:
    path = write_htpasswd(tmp / "htpasswd", alice="secret")
    setup = build(HtpasswdSettings(realm="My Realm", path=str(path)))

    async def test(client: TestClient) -> None:
        for headers in ({}, basic("alice", "wrong"), basic("nobody", "secret"), {"Authorization": "Basic !!"}):
            resp = await client.get("/v2/", headers=headers)
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == 'Basic realm="My Realm"'
            assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
            err = await error_body(resp)
            assert (err["code"], err["message"]) == ("UNAUTHORIZED", "authentication required")
        resp = await client.get("/v2/", headers=basic("alice", "secret"))
        assert resp.status == 200
        resp = await client.get("/v2/repo/tags/list", headers=basic("alice", "secret"))
        assert resp.status == 404  # through auth, to the handler: the repo is unknown
        resp = await client.post("/v2/repo/blobs/uploads/", headers=basic("alice", "secret"))
        assert resp.status == 202
        assert (await client.get("/v2/_catalog")).status == 401

    run(setup, test)


# -- Bearer tokens ----------------------------------------------------------------------------------
def token_setup(tmp: Path, *, anonymous_pull: bool = False, kind: str = "rsa") -> AuthSetup:
    write_key(tmp / "signing.pem", kind)
    path = write_htpasswd(tmp / "users", alice="secret")
    return build(TokenSettings(realm=REALM, service="reg.test", issuer="dockyard-test",
                               builtin=BuiltinIssuerSettings(key=str(tmp / "signing.pem"), htpasswd=str(path),
                                                             expiration=300, anonymous_pull=anonymous_pull)))


async def get_token(client: TestClient, scope: str | None, headers: dict[str, str] | None = None) -> str:
    params = {"service": "reg.test", **({"scope": scope} if scope else {})}
    resp = await client.get("/auth/token", params=params, headers=headers or {})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z") and datetime.datetime.fromisoformat(body["issued_at"])
    return str(body["token"])


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_token_flow_builtin_issuer(tmp: Path, kind: str) -> None:
    setup = token_setup(tmp, kind=kind)

    async def test(client: TestClient) -> None:
        resp = await client.get("/v2/a/b/tags/list")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == (
            f'Bearer realm="{REALM}",service="reg.test",scope="repository:a/b:pull"')
        err = await error_body(resp)
        assert err["code"] == "UNAUTHORIZED"
        assert err["detail"] == [{"Type": "repository", "Class": "", "Name": "a/b", "Action": "pull"}]
        assert (await client.get("/v2/")).headers["WWW-Authenticate"] == (
            f'Bearer realm="{REALM}",service="reg.test"')
        token = await get_token(client, "repository:a/b:pull,push", basic("alice", "secret"))
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]
        assert claims["sub"] == "alice" and claims["aud"] == "reg.test" and claims["iss"] == "dockyard-test"
        assert jwt.get_unverified_header(token)["alg"] == ("RS256" if kind == "rsa" else "ES256")
        assert (await client.get("/v2/", headers=bearer(token))).status == 200
        assert (await client.post("/v2/a/b/blobs/uploads/", headers=bearer(token))).status == 202
        assert (await client.get("/v2/a/b/tags/list", headers=bearer(token))).status == 200  # upload made it
        # no delete in the grant, another repository, the catalog: refused with the missing access
        resp = await client.delete(f"/v2/a/b/manifests/sha256:{'0' * 64}", headers=bearer(token))
        assert resp.status == 401
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
        assert 'scope="repository:a/b:delete"' in resp.headers["WWW-Authenticate"]
        assert (await error_body(resp))["detail"][0]["Action"] == "delete"
        assert (await client.get("/v2/other/tags/list", headers=bearer(token))).status == 401
        resp = await client.get("/v2/_catalog", headers=bearer(token))
        assert resp.status == 401 and 'scope="registry:catalog:*"' in resp.headers["WWW-Authenticate"]
        cat = await get_token(client, "registry:catalog:*", basic("alice", "secret"))
        assert (await client.get("/v2/_catalog", headers=bearer(cat))).status == 200

    run(setup, test)


def test_token_mount_needs_pull_on_source(tmp: Path) -> None:
    setup = token_setup(tmp)

    async def test(client: TestClient) -> None:
        digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
        url = f"/v2/dst/blobs/uploads/?mount={digest}&from=src"
        only_dst = await get_token(client, "repository:dst:pull,push", basic("alice", "secret"))
        resp = await client.post(url, headers=bearer(only_dst))
        assert resp.status == 401 and "repository:src:pull" in resp.headers["WWW-Authenticate"]
        both = await get_token(client, "repository:dst:pull,push repository:src:pull", basic("alice", "secret"))
        assert (await client.post(url, headers=bearer(both))).status == 202

    run(setup, test)


def test_token_endpoint_credentials_and_anonymous(tmp: Path) -> None:
    async def refused(client: TestClient) -> None:
        resp = await client.get("/auth/token", params={"service": "reg.test", "scope": "repository:a:pull"},
                                headers=basic("alice", "wrong"))
        assert resp.status == 401
        assert (await error_body(resp))["code"] == "UNAUTHORIZED"
        assert (await resp.json())["details"] == "incorrect username or password"  # what docker shows
        assert resp.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'
        resp = await client.get("/auth/token", params={"service": "elsewhere"})
        assert resp.status == 400
        anon = await get_token(client, "repository:a:pull,push registry:catalog:*")
        assert jwt.decode(anon, options={"verify_signature": False})["access"] == []
        login = await get_token(client, None, basic("alice", "secret"))  # docker login asks no scope
        assert (await client.get("/v2/", headers=bearer(login))).status == 200

    run(token_setup(tmp), refused)

    async def anonymous_pull(client: TestClient) -> None:
        anon = await get_token(client, "repository:a:pull,push")
        assert jwt.decode(anon, options={"verify_signature": False})["access"] == [
            {"type": "repository", "name": "a", "actions": ["pull"]}]
        assert (await client.get("/v2/a/tags/list", headers=bearer(anon))).status == 404
        assert (await client.post("/v2/a/blobs/uploads/", headers=bearer(anon))).status == 401

    shutil.rmtree(tmp)
    tmp.mkdir()
    run(token_setup(tmp, anonymous_pull=True), anonymous_pull)


def test_verifier_rejects_foreign_expired_and_wrong_claims(tmp: Path) -> None:
    write_key(tmp / "k.pem")
    issuer = TokenIssuer(str(tmp / "k.pem"), issuer="iss", service="svc")
    verifier = TokenVerifier(issuer="iss", service="svc", keys=[issuer.public_key])
    good = issuer.issue("u", [Access("repository", "r", "pull")])["token"]
    assert verifier.verify(good) == {Access("repository", "r", "pull")}
    write_key(tmp / "other.pem")
    foreign = TokenIssuer(str(tmp / "other.pem"), issuer="iss", service="svc").issue("u", [])["token"]
    expired = issuer.issue("u", [], now=1_000_000)["token"]
    wrong_aud = TokenIssuer(str(tmp / "k.pem"), issuer="iss", service="nope").issue("u", [])["token"]
    wrong_iss = TokenIssuer(str(tmp / "k.pem"), issuer="nope", service="svc").issue("u", [])["token"]
    hs256 = jwt.encode({"iss": "iss", "aud": "svc", "exp": 2**40}, "a-shared-secret-of-32-bytes-or-more", algorithm="HS256")
    for bad in (foreign, expired, wrong_aud, wrong_iss, hs256, "not-a-jwt"):
        with pytest.raises(TokenError):
            verifier.verify(bad)


def test_issuer_certificate_goes_in_x5c(tmp: Path) -> None:
    key = write_key(tmp / "k.pem", "ec")
    cert = self_signed(key)
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issuer = TokenIssuer(str(tmp / "k.pem"), issuer="iss", service="svc", certificate=str(tmp / "c.pem"))
    token = issuer.issue("u", [Access("repository", "r", "push")])["token"]
    assert len(jwt.get_unverified_header(token)["x5c"]) == 1
    verifier = TokenVerifier(issuer="iss", service="svc", roots=[cert])
    assert verifier.verify(token) == {Access("repository", "r", "push")}
    write_key(tmp / "other.pem", "ec")
    with pytest.raises(InvalidArgument, match="not for the signing key"):
        TokenIssuer(str(tmp / "other.pem"), issuer="iss", service="svc", certificate=str(tmp / "c.pem"))


def test_verifier_rootcertbundle_and_x5c(tmp: Path) -> None:
    """Tokens signed by a key whose certificate is in the bundle (distribution's usual setup),
    with and without an x5c header; an x5c chain from an untrusted certificate is refused."""
    key = write_key(tmp / "k.pem", "ec")
    cert = self_signed(key)
    (tmp / "bundle.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    settings = TokenSettings(realm=REALM, service="svc", issuer="iss", rootcertbundle=str(tmp / "bundle.pem"))
    setup = build(settings)
    claims = {"iss": "iss", "aud": "svc", "exp": 2**40, "access": [{"type": "repository", "name": "r",
                                                                     "actions": ["pull"]}]}
    plain = jwt.encode(claims, key, algorithm="ES256")
    x5c = jwt.encode(claims, key, algorithm="ES256", headers={
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]})
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = jwt.encode(claims, rogue_key, algorithm="ES256", headers={
        "x5c": [base64.b64encode(self_signed(rogue_key).public_bytes(serialization.Encoding.DER)).decode()]})
    assert setup.token_route is None

    async def test(client: TestClient) -> None:
        for token in (plain, x5c):
            assert (await client.get("/v2/r/tags/list", headers=bearer(token))).status == 404
        resp = await client.get("/v2/r/tags/list", headers=bearer(rogue))
        assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]

    run(setup, test)


# -- config --------------------------------------------------------------------------------------------
def test_config_auth_and_tls_sections(tmp: Path) -> None:
    path = tmp / "config.yml"
    path.write_text(json.dumps({
        "version": "0.1",
        "http": {"addr": ":5001", "tls": {"certificate": "/c.pem", "key": "/k.pem"}},
        "auth": {"token": {"realm": REALM, "service": "s", "issuer": "i",
                           "builtin": {"key": "/k.pem", "htpasswd": "/h", "anonymouspull": True}}}}))
    cfg = registry_config.load(str(path), environ={"REGISTRY_AUTH_TOKEN_BUILTIN_EXPIRATION": "600"})
    assert cfg.tls == TlsSettings("/c.pem", "/k.pem")
    assert cfg.auth == TokenSettings(realm=REALM, service="s", issuer="i", rootcertbundle=None,
                                     builtin=BuiltinIssuerSettings("/k.pem", "/h", 600, True))
    env = {"REGISTRY_AUTH_HTPASSWD_REALM": "R", "REGISTRY_AUTH_HTPASSWD_PATH": "/etc/htpasswd"}
    assert registry_config.load(None, environ=env).auth == HtpasswdSettings("R", "/etc/htpasswd")
    assert registry_config.load(None, environ={}).auth is None


@pytest.mark.parametrize("auth, message", [
    ({"htpasswd": {"realm": "r", "path": "/h"}, "token": {"realm": "x"}}, "exactly one scheme"),
    ({"token": {"realm": REALM, "service": "s", "issuer": "i"}}, "rootcertbundle"),
    ({"htpasswd": {"realm": "r"}}, "auth.htpasswd.path"),
    ({"silly": {"realm": "r"}}, "unknown key"),
    ({"token": {"realm": REALM, "service": "s", "issuer": "i",
                "builtin": {"key": "/k", "htpasswd": "/h", "expiration": 0}}}, "expiration"),
])
def test_config_auth_errors(tmp: Path, auth: dict[str, Any], message: str) -> None:
    path = tmp / "config.yml"
    path.write_text(json.dumps({"version": "0.1", "auth": auth}))
    with pytest.raises(InvalidArgument, match=message):
        registry_config.load(str(path), environ={})


def test_build_checks_files(tmp: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a file"):
        build(HtpasswdSettings("r", str(tmp / "absent")))
    (tmp / "h").write_text("")
    with pytest.raises(InvalidArgument, match="signing key"):
        build(TokenSettings(REALM, "s", "i", builtin=BuiltinIssuerSettings(str(tmp / "h"), str(tmp / "h"))))
