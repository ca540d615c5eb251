"""Pull-through cache mode: an upstream dockyard-registry and a proxy, both aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.errors import InvalidArgument
from dockyard.registry.proxy import ProxyRegistry, ProxySettings, parse_settings
from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store.registry import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Env:
    """The running pair: clients of the upstream and of the proxy, the proxy's storage root."""

    up: TestClient
    proxy: TestClient
    registry: ProxyRegistry
    root: str
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path) the upstream answered
    up_server: TestServer | None = None

    def blob_gets(self, digest: str) -> int:
        return sum(1 for m, p in self.seen if m == "GET" and p.endswith(f"/blobs/{digest}"))

    async def stop_upstream(self) -> None:
        assert self.up_server is not None
        await self.up_server.close()


Test = Callable[[Env], Awaitable[None]]


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(**runner_options())
    return server


def run(test: Test, *, ttl: str | None = None, upstream_app: Callable[[Registry], web.Application] | None = None,
        credentials: tuple[str, str] | None = None, remote: str | None = None) -> None:
    """An upstream registry app (in memory) and a proxy over a filesystem root, then ``test``."""
    root = tempfile.mkdtemp(prefix="dockyard-proxy-test-")

    async def main() -> None:
        upstream = Registry(InMemoryDriver())
        app = upstream_app(upstream) if upstream_app else create_app(upstream)
        seen: list[tuple[str, str]] = []

        async def record(request: web.Request, response: web.StreamResponse) -> None:
            seen.append((request.method, request.path))

        app.on_response_prepare.append(record)
        up_server = await _serve(app)
        raw: dict[str, Any] = {"remoteurl": remote or str(up_server.make_url("")).rstrip("/")}
        if ttl is not None:
            raw["ttl"] = ttl
        if credentials:
            raw["username"], raw["password"] = credentials
        registry = ProxyRegistry(FilesystemDriver(root), parse_settings(raw))
        proxy_server = await _serve(create_app(registry))
        try:
            async with TestClient(up_server) as up, TestClient(proxy_server) as proxy:
                await test(Env(up, proxy, registry, root, seen, up_server))
        finally:
            await registry.close()
            await proxy_server.close()
            await up_server.close()

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def push_blob(client: TestClient, name: str, data: bytes, headers: dict[str, str] | None = None) -> str:
    d = sha(data)
    resp = await client.post(f"/v2/{name}/blobs/uploads/?digest={d}", data=data, headers=headers or {})
    assert resp.status == 201, await resp.text()
    return d


def manifest_of(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(x), "size": len(x)} for x in layers],
    }).encode()


async def push_image(client: TestClient, name: str, tag: str, layers: list[bytes],
                     headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    """Config + layers + a manifest under ``tag``: (manifest digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in (config, *layers):
        await push_blob(client, name, blob, headers)
    body = manifest_of(config, layers)
    resp = await client.put(f"/v2/{name}/manifests/{tag}", data=body,
                            headers={"Content-Type": OCI_MANIFEST, **(headers or {})})
    assert resp.status == 201, await resp.text()
    return sha(body), body


async def codes(resp: Any) -> tuple[int, list[str]]:
    body = await resp.json()
    return resp.status, [e["code"] for e in body["errors"]]


def repo_path(env: Env, name: str, *parts: str) -> str:
    return os.path.join(env.root, "repositories", name, *parts)


# -- settings -----------------------------------------------------------------------------------------------------------

def test_settings_defaults_and_errors() -> None:
    s = parse_settings({"remoteurl": "https://registry-1.docker.io/", "username": "u", "password": "p"})
    assert s == ProxySettings("https://registry-1.docker.io", "u", "p", 168 * 3600.0)
    assert "p'" not in repr(s)
    assert parse_settings({"remoteurl": "http://127.0.0.1:5000", "ttl": "0"}).ttl == 0
    assert parse_settings({"remoteurl": "http://h", "ttl": "1h30m"}).ttl == 5400
    for raw, where in (({}, "proxy.remoteurl is required"), ({"remoteurl": "ftp://x"}, "proxy.remoteurl"),
                       ({"remoteurl": "http://h/v2/x"}, "proxy.remoteurl"), ({"remoteurl": "http://h", "ttl": "soon"},
                                                                              "proxy.ttl"),
                       ({"remoteurl": "http://h", "ttl": "-1h"}, "proxy.ttl"),
                       ({"remoteurl": "http://h", "password": "p"}, "proxy.password"),
                       ({"remoteurl": "http://h", "color": "red"}, "proxy.color")):
        with pytest.raises(InvalidArgument, match=f"configuration: {where}"):
            parse_settings(raw)


# -- pulls through the cache --------------------------------------------------------------------------------------------

def test_pull_through_caches_and_serves_when_upstream_is_gone() -> None:
    async def t(env: Env) -> None:
        layer = os.urandom(3 << 20)
        digest, body = await push_image(env.up, "library/app", "1", [layer, b"small layer"])
        r = await env.proxy.get("/v2/library/app/manifests/1", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and await r.read() == body
        assert r.headers["Docker-Content-Digest"] == digest and r.headers["Content-Type"] == OCI_MANIFEST
        assert os.path.exists(repo_path(env, "library/app", "_proxied"))
        h = await env.proxy.head(f"/v2/library/app/blobs/{sha(layer)}")
        assert h.status == 200 and h.headers["Content-Length"] == str(len(layer))
        assert not os.path.exists(os.path.join(env.root, "blobs", "sha256", sha(layer)[7:9]))  # HEAD stores nothing
        r = await env.proxy.get(f"/v2/library/app/blobs/{sha(layer)}")
        assert r.status == 200 and await r.read() == layer
        assert env.blob_gets(sha(layer)) == 1
        await env.stop_upstream()
        for ref in ("1", digest):
            r = await env.proxy.get(f"/v2/library/app/manifests/{ref}")
            assert r.status == 200 and await r.read() == body, ref
        r = await env.proxy.get(f"/v2/library/app/blobs/{sha(layer)}")
        assert r.status == 200 and await r.read() == layer
        r = await env.proxy.get(f"/v2/library/app/blobs/{sha(layer)}", headers={"Range": "bytes=10-19"})
        assert r.status == 206 and await r.read() == layer[10:20]
        r = await env.proxy.get("/v2/library/app/tags/list")
        assert r.status == 200 and (await r.json())["tags"] == ["1"]
        # not cached and the upstream is gone: 404 with the reason
        r = await env.proxy.get(f"/v2/library/app/blobs/{sha(b'small layer')}")
        status, found = await codes(r)
        assert (status, found) == (404, ["BLOB_UNKNOWN"])
        r = await env.proxy.get("/v2/library/other/manifests/latest")
        body_json = await r.json()
        assert r.status == 404 and body_json["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert "unavailable" in body_json["errors"][0]["message"]
        r = await env.proxy.get("/v2/_catalog")
        assert (await r.json())["repositories"] == ["library/app"]

    run(t)


def test_missing_upstream_content_is_404_and_stores_nothing() -> None:
    async def t(env: Env) -> None:
        r = await env.proxy.get("/v2/nothing/here/manifests/1")
        assert await codes(r) == (404, ["MANIFEST_UNKNOWN"])
        r = await env.proxy.head(f"/v2/nothing/here/blobs/{sha(b'x')}")
        assert r.status == 404
        r = await env.proxy.get("/v2/nothing/here/tags/list")
        assert await codes(r) == (404, ["NAME_UNKNOWN"])
        assert not os.path.exists(os.path.join(env.root, "repositories"))

    run(t)


def test_concurrent_pulls_of_one_blob_fetch_it_once() -> None:
    async def t(env: Env) -> None:
        layer = os.urandom(8 << 20)
        await push_image(env.up, "shared", "1", [layer])
        await push_blob(env.up, "other", layer)

        async def pull(repo: str) -> bytes:
            r = await env.proxy.get(f"/v2/{repo}/blobs/{sha(layer)}")
            assert r.status == 200
            return await r.read()

        got = await asyncio.gather(*(pull("shared") for _ in range(4)), pull("other"))
        assert all(g == layer for g in got)
        assert env.blob_gets(sha(layer)) == 1
        r = await env.proxy.get(f"/v2/other/blobs/{sha(layer)}")  # linked into both repositories
        assert r.status == 200 and await r.read() == layer
        assert env.blob_gets(sha(layer)) == 1

    run(t)


def test_a_reader_that_goes_away_does_not_stop_the_fetch() -> None:
    async def t(env: Env) -> None:
        layer = os.urandom(16 << 20)
        await push_blob(env.up, "big", layer)
        r = await env.proxy.get(f"/v2/big/blobs/{sha(layer)}")
        assert len(await r.content.read(1 << 20)) > 0
        r.close()  # hang up after the first bytes
        for _ in range(100):
            if os.path.exists(repo_path(env, "big", "_layers")):
                break
            await asyncio.sleep(0.05)
        await env.stop_upstream()
        r = await env.proxy.get(f"/v2/big/blobs/{sha(layer)}")
        assert r.status == 200 and await r.read() == layer
        assert env.blob_gets(sha(layer)) == 1

    run(t)


def test_range_of_an_uncached_blob() -> None:
    async def t(env: Env) -> None:
        layer = os.urandom(100_000)
        await push_blob(env.up, "ranged", layer)
        r = await env.proxy.get(f"/v2/ranged/blobs/{sha(layer)}", headers={"Range": "bytes=50000-"})
        assert r.status == 206 and await r.read() == layer[50000:]
        await env.stop_upstream()
        r = await env.proxy.get(f"/v2/ranged/blobs/{sha(layer)}")
        assert r.status == 200 and await r.read() == layer

    run(t)


def _lying_upstream(registry: Registry) -> web.Application:
    """An upstream whose blob GETs answer other bytes of the same length (a corrupt or hostile mirror)."""
    app = create_app(registry)

    @web.middleware
    async def corrupt(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "GET" and "/blobs/sha256:" in request.path:
            name, digest = request.path[len("/v2/"):].split("/blobs/")
            size = await registry.blob_size(name, digest)
            return web.Response(body=b"\0" * size, headers={"Content-Type": "application/octet-stream"})
        return await handler(request)

    app.middlewares.append(corrupt)
    return app


def test_digest_mismatch_stores_nothing_and_never_completes_the_body() -> None:
    async def t(env: Env) -> None:
        layer = os.urandom(3 << 20)
        await push_blob(env.up, "bad", layer)
        r = await env.proxy.get(f"/v2/bad/blobs/{sha(layer)}")
        assert r.status == 200 and r.headers["Content-Length"] == str(len(layer))
        try:
            got: bytes | None = await r.read()
        except aiohttp.ClientPayloadError:  # the connection was cut before the last (held back) chunk
            got = None
        assert got is None
        await asyncio.sleep(0.1)
        blob_dir = os.path.join(env.root, "blobs", "sha256", sha(layer)[7:9], sha(layer)[7:])
        assert not os.path.exists(blob_dir)
        assert not os.path.exists(repo_path(env, "bad", "_layers"))
        incoming = os.path.join(env.root, "_proxy", "incoming")
        assert not os.path.isdir(incoming) or os.listdir(incoming) == []

    run(t, upstream_app=_lying_upstream)


# -- pushes next to the cache -------------------------------------------------------------------------------------------

def test_push_to_new_repository_is_local_and_push_to_cached_one_is_refused() -> None:
    async def t(env: Env) -> None:
        await push_image(env.up, "cached", "1", [b"upstream layer"])
        await push_image(env.up, "mine", "1", [b"upstream's mine"])
        assert (await env.proxy.get("/v2/cached/manifests/1")).status == 200
        # a push to a repository nothing was cached in: it becomes local, upstream is never asked again
        _, body = await push_image(env.proxy, "mine", "2", [b"local layer"])
        assert os.path.exists(repo_path(env, "mine", "_local"))
        r = await env.proxy.get("/v2/mine/manifests/2")
        assert r.status == 200 and await r.read() == body
        asked = len(env.seen)
        assert await codes(await env.proxy.get("/v2/mine/manifests/1")) == (404, ["MANIFEST_UNKNOWN"])
        assert (await (await env.proxy.get("/v2/mine/tags/list")).json())["tags"] == ["2"]
        assert len(env.seen) == asked
        # a push (upload, mount, manifest) or delete in a cached repository: 405 UNSUPPORTED
        r = await env.proxy.post("/v2/cached/blobs/uploads/")
        status, found = await codes(r)
        assert (status, found) == (405, ["UNSUPPORTED"])
        r = await env.proxy.post(f"/v2/cached/blobs/uploads/?mount={sha(b'local layer')}&from=mine")
        assert (await codes(r)) == (405, ["UNSUPPORTED"])
        r = await env.proxy.put("/v2/cached/manifests/2", data=body, headers={"Content-Type": OCI_MANIFEST})
        doc = await r.json()
        assert r.status == 405 and "pull-through cache of http://127.0.0.1:" in doc["errors"][0]["message"]
        assert await codes(await env.proxy.delete("/v2/cached/manifests/1")) == (405, ["UNSUPPORTED"])
        assert (await env.proxy.get("/v2/_catalog")).status == 200
        assert (await (await env.proxy.get("/v2/_catalog")).json())["repositories"] == ["cached", "mine"]

    run(t)


def test_states_survive_a_restart() -> None:
    async def t(env: Env) -> None:
        await push_image(env.up, "cached", "1", [b"a"])
        assert (await env.proxy.get("/v2/cached/manifests/1")).status == 200
        await push_image(env.proxy, "mine", "1", [b"b"])
        again = ProxyRegistry(FilesystemDriver(env.root), env.registry.settings)
        try:
            assert await again.state("cached") == "proxied" and await again.state("mine") == "local"
            assert await again.state("never") == "new"
            with pytest.raises(Exception, match="pull-through cache"):
                await again.start_upload("cached")
            assert (await again.get_manifest("mine", "1"))[1] == OCI_MANIFEST
        finally:
            await again.close()

    run(t)


# -- tag freshness ------------------------------------------------------------------------------------------------------

def _age(env: Env, repo: str, tag: str, seconds: float) -> None:
    link = repo_path(env, repo, "_manifests", "tags", tag, "current", "link")
    st = os.stat(link)
    os.utime(link, (st.st_atime - seconds, st.st_mtime - seconds))


def test_ttl_rechecks_a_cached_tag_upstream() -> None:
    async def t(env: Env) -> None:
        first, body1 = await push_image(env.up, "moving", "latest", [b"v1"])
        assert await (await env.proxy.get("/v2/moving/manifests/latest")).read() == body1
        second, body2 = await push_image(env.up, "moving", "latest", [b"v2"])
        # within the ttl: the cached copy, upstream not asked
        asked = len(env.seen)
        assert await (await env.proxy.get("/v2/moving/manifests/latest")).read() == body1
        assert len(env.seen) == asked
        # past the ttl: a HEAD finds the new digest, which is fetched and cached
        _age(env, "moving", "latest", 3700)
        r = await env.proxy.get("/v2/moving/manifests/latest")
        assert await r.read() == body2 and r.headers["Docker-Content-Digest"] == second
        assert ("HEAD", "/v2/moving/manifests/latest") in env.seen
        # past the ttl, same digest: only a HEAD, and the ttl starts again
        _age(env, "moving", "latest", 3700)
        asked = len(env.seen)
        assert await (await env.proxy.get("/v2/moving/manifests/latest")).read() == body2
        assert [m for m, _ in env.seen[asked:]] == ["HEAD"]
        asked = len(env.seen)
        assert (await env.proxy.get("/v2/moving/manifests/latest")).status == 200
        assert len(env.seen) == asked
        # past the ttl with the upstream gone: still served
        _age(env, "moving", "latest", 3700)
        await env.stop_upstream()
        r = await env.proxy.get("/v2/moving/manifests/latest")
        assert r.status == 200 and await r.read() == body2
        assert (await env.proxy.get(f"/v2/moving/manifests/{first}")).status == 200

    run(t, ttl="1h")


def test_ttl_zero_never_rechecks_and_untag_upstream_is_followed() -> None:
    async def never(env: Env) -> None:
        await push_image(env.up, "pinned", "1", [b"x"])
        assert (await env.proxy.get("/v2/pinned/manifests/1")).status == 200
        _age(env, "pinned", "1", 10 * 365 * 86400)
        asked = len(env.seen)
        assert (await env.proxy.get("/v2/pinned/manifests/1")).status == 200
        assert len(env.seen) == asked

    async def gone(env: Env) -> None:
        await push_image(env.up, "gone", "1", [b"x"])
        assert (await env.proxy.get("/v2/gone/manifests/1")).status == 200
        assert (await env.up.delete("/v2/gone/manifests/1")).status == 202
        _age(env, "gone", "1", 60)
        assert await codes(await env.proxy.get("/v2/gone/manifests/1")) == (404, ["MANIFEST_UNKNOWN"])
        assert (await (await env.proxy.get("/v2/gone/tags/list")).json())["tags"] == []

    run(never, ttl="0")
    run(gone, ttl="30s")


# -- upstream auth ------------------------------------------------------------------------------------------------------

USER, PASSWORD = "proxyuser", "proxy-secret"


def _basic_upstream(registry: Registry) -> web.Application:
    from dockyard.registry.auth import build
    from dockyard.registry.auth.htpasswd import hash_password
    from dockyard.registry.auth.settings import parse_auth

    path = os.path.join(tempfile.mkdtemp(prefix="dockyard-proxy-htpasswd-"), "htpasswd")
    with open(path, "w") as f:
        f.write(f"{USER}:{hash_password(PASSWORD, rounds=4)}\n")
    settings = parse_auth({"htpasswd": {"realm": "upstream", "path": path}})
    assert settings is not None
    return create_app(registry, auth=build(settings))


TOKEN = "upstream-token-1"
SCOPES: web.AppKey[list[str]] = web.AppKey("scopes")


def _bearer_upstream(registry: Registry) -> web.Application:
    """A token-guarded upstream: /v2 wants ``Bearer TOKEN``; /token hands it out for USER:PASSWORD."""
    app = create_app(registry)
    scopes: list[str] = []

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v2") and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"http://{request.host}/token"
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                     status=401, headers={"WWW-Authenticate":
                                                          f'Bearer realm="{realm}",service="upstream"'})
        return await handler(request)

    async def token(request: web.Request) -> web.StreamResponse:
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != basic or request.query.get("service") != "upstream":
            return web.json_response({"details": "wrong credentials"}, status=401)
        scopes.append(request.query.get("scope", ""))
        return web.json_response({"token": TOKEN})

    app.middlewares.append(guard)
    app.router.add_get("/token", token)
    app[SCOPES] = scopes
    return app


@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_upstream_credentials(kind: str) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()} \
        if kind == "basic" else {"Authorization": f"Bearer {TOKEN}"}

    async def t(env: Env) -> None:
        layer = os.urandom(200_000)
        _, body = await push_image(env.up, "private/app", "1", [layer], headers=auth)
        r = await env.proxy.get("/v2/private/app/manifests/1")
        assert r.status == 200 and await r.read() == body
        r = await env.proxy.get(f"/v2/private/app/blobs/{sha(layer)}")
        assert r.status == 200 and await r.read() == layer
        r = await env.proxy.get("/v2/private/app/tags/list")
        assert (await r.json())["tags"] == ["1"]

    async def wrong(env: Env) -> None:
        await push_image(env.up, "private/app", "1", [b"l"], headers=auth)
        r = await env.proxy.get("/v2/private/app/manifests/1")
        assert r.status == 404 and (await r.json())["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    app = _basic_upstream if kind == "basic" else _bearer_upstream
    run(t, upstream_app=app, credentials=(USER, PASSWORD))
    run(wrong, upstream_app=app, credentials=(USER, "wrong"))


def test_bearer_token_is_scoped_to_the_repository() -> None:
    holder: dict[str, web.Application] = {}

    def app(registry: Registry) -> web.Application:
        holder["app"] = _bearer_upstream(registry)
        return holder["app"]

    async def t(env: Env) -> None:
        await push_image(env.up, "team/tool", "1", [b"z"], headers={"Authorization": f"Bearer {TOKEN}"})
        assert (await env.proxy.get("/v2/team/tool/manifests/1")).status == 200
        assert "repository:team/tool:pull" in holder["app"][SCOPES]

    run(t, upstream_app=app, credentials=(USER, PASSWORD))


def test_stale_fetch_files_are_purged_and_young_ones_kept(tmp_path) -> None:
    """A process killed mid-fetch leaves _proxy/incoming/<id>; serve removes such files once old."""
    from dockyard.registry.proxy.fetch import INCOMING, purge_incoming
    from dockyard.registry.storage.filesystem import FilesystemDriver

    driver = FilesystemDriver(str(tmp_path))

    async def scenario() -> tuple[list[str], list[str]]:
        await driver.put(f"{INCOMING}/old", b"partial")
        await driver.put(f"{INCOMING}/young", b"in flight")
        old = tmp_path / "_proxy" / "incoming" / "old"
        os.utime(old, (time.time() - 7 * 3600, time.time() - 7 * 3600))
        removed = await purge_incoming(driver)
        return removed, await driver.list(INCOMING)

    removed, left = asyncio.run(scenario())
    assert removed == [f"{INCOMING}/old"]
    assert left == ["young"]
    assert asyncio.run(purge_incoming(FilesystemDriver(str(tmp_path / "empty")))) == []
