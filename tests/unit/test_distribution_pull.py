"""dockyard.distribution.pull against an in-process fake registry (aiohttp), without root.

The fake serves a manifest list over a schema2 manifest with one gzip and one zstd layer, asks for
a Bearer token (checked against Basic credentials), answers Range requests and drops the first
download of a layer halfway, so the resume path is exercised. The pull goes into a real
ImageService (unpacking is left to the privileged acceptance test).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from typing import Any

import pytest
import zstandard
from aiohttp import web
from aiohttp.test_utils import TestServer

from dockyard.distribution.client import Credentials
from dockyard.distribution.progress import Progress
from dockyard.distribution.pull import Puller
from dockyard.engine.daemon.images import find_image
from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.image import host_platform
from dockyard.supervisor.images import ImageService


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


class FakeRegistry:
    """Blobs and manifests in dicts; Bearer auth; the first GET of each layer is cut in half."""

    def __init__(self, *, user: str = "u", password: str = "pw") -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.tags: dict[str, str] = {}
        self.user, self.password = user, password
        self.cut: set[str] = set()
        self.ranges: list[str] = []
        self.corrupt: set[str] = set()
        self.base = ""

    def add_blob(self, data: bytes) -> str:
        self.blobs[sha(data)] = data
        return sha(data)

    def add_manifest(self, doc: dict[str, Any], tag: str | None = None) -> str:
        raw = json.dumps(doc, indent=3).encode()
        self.manifests[sha(raw)] = (raw, doc["mediaType"])
        if tag:
            self.tags[tag] = sha(raw)
        return sha(raw)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_get("/token", self.token)
        app.router.add_get("/v2/", self.ping)
        app.router.add_get("/v2/{name:.+}/manifests/{ref}", self.manifest)
        app.router.add_get("/v2/{name:.+}/blobs/{digest}", self.blob)
        return app

    @web.middleware
    async def auth(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.path.startswith("/v2/") and request.headers.get("Authorization") != "Bearer good-token":
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}, status=401,
                headers={"WWW-Authenticate": f'Bearer realm="{self.base}/token",service="fake",'
                                             'scope="repository:team/app:pull"'})
        return await handler(request)

    async def ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    async def token(self, request: web.Request) -> web.StreamResponse:
        basic = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        ok = request.query.get("service") == "fake" and request.query.get("scope") == "repository:team/app:pull"
        if request.headers.get("Authorization") != basic or not ok:
            return web.json_response({"details": "bad credentials"}, status=401)
        return web.json_response({"token": "good-token"})

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["ref"]
        found = self.manifests.get(self.tags.get(ref, ref))
        if found is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                                  "detail": {"Tag": ref}}]}, status=404)
        return web.Response(body=found[0], headers={"Content-Type": found[1]})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404)
        if digest in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        start = 0
        if "Range" in request.headers:
            self.ranges.append(request.headers["Range"])
            start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
        resp = web.StreamResponse(status=206 if start else 200)
        resp.content_length = len(data) - start
        await resp.prepare(request)
        if digest in self.cut:
            self.cut.discard(digest)
            await resp.write(data[start:start + (len(data) - start) // 2])
            assert request.transport is not None
            request.transport.close()  # a dropped connection mid-body
            return resp
        await resp.write(data[start:])
        await resp.write_eof()
        return resp


def build_image(reg: FakeRegistry) -> dict[str, Any]:
    tar1 = layer_tar("hello.txt", b"hello\n" * 50000)
    tar2 = layer_tar("world.txt", b"world\n" * 40000)
    gz = gzip.compress(tar1, mtime=0)
    zst = zstandard.ZstdCompressor().compress(tar2)
    config = json.dumps({"architecture": host_platform().architecture, "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(tar1), sha(tar2)]}}).encode()
    cfg = reg.add_blob(config)
    layers = [(reg.add_blob(gz), len(gz), mt.DOCKER_LAYER_GZIP), (reg.add_blob(zst), len(zst), mt.OCI_LAYER_ZSTD)]
    manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG, "digest": cfg, "size": len(config)},
                "layers": [{"mediaType": m, "digest": d, "size": n} for d, n, m in layers]}
    mdigest = reg.add_manifest(manifest)
    mraw = reg.manifests[mdigest][0]
    index = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST, "digest": sha(b"other"), "size": 5,
         "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": mt.DOCKER_MANIFEST, "digest": mdigest, "size": len(mraw),
         "platform": {"os": "linux", "architecture": host_platform().architecture}}]}
    idigest = reg.add_manifest(index, tag="v1")
    return {"config": cfg, "manifest": mdigest, "index": idigest, "layers": [d for d, _, _ in layers]}


CREDS = Credentials("u", "pw")


def pull(tmp: str, ref_text: str, build: Callable[[FakeRegistry], Any] = build_image,
         creds: Credentials | None = CREDS, twice: bool = False,
         mirrors: tuple[str, ...] = ()) -> Any:
    """Serve a fake registry, pull ``ref_text`` ("{host}" replaced) into a fresh ImageService."""
    reg = FakeRegistry()
    built = build(reg)
    svc = ImageService(tmp)

    async def main() -> Any:
        server = TestServer(reg.app(), host="127.0.0.1")
        await server.start_server()
        reg.base = f"http://127.0.0.1:{server.port}"
        loop = asyncio.get_running_loop()

        async def run_blocking(fn: Callable[..., Any], *a: Any, **k: Any) -> Any:
            return await loop.run_in_executor(None, functools.partial(fn, *a, **k))

        host = f"127.0.0.1:{server.port}"
        puller = Puller(svc, run_blocking, unpack=False, backoff=0.01,
                        mirrors=tuple(m.format(host=host) for m in mirrors))
        ref = reference.parse(ref_text.format(host=f"127.0.0.1:{server.port}"))
        results = []
        try:
            for _ in range(2 if twice else 1):
                progress = Progress(_collect)
                results.append((await puller.pull(ref, creds, progress), progress.messages))
        finally:
            await server.close()
        return results

    try:
        return reg, built, svc, asyncio.run(main())
    finally:
        svc.close()


async def _collect(message: dict[str, Any]) -> None:
    return None


def statuses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["status"] + (f" [{m['id']}]" if "id" in m else "") for m in messages if m["status"] != "Downloading"]


def test_pull_manifest_list_with_auth_and_resume(tmp_path: Any) -> None:
    def build(reg: FakeRegistry) -> Any:
        built = build_image(reg)
        reg.cut.add(built["layers"][0])
        return built

    reg, built, _, [(result, messages)] = pull(str(tmp_path), "{host}/team/app:v1", build)
    assert result.image_id == built["config"]
    assert result.repo_digest == built["index"]  # RepoDigests name the list, as dockerd records it
    assert not result.up_to_date
    assert reg.ranges and reg.ranges[0] != "bytes=0-"  # resumed where the cut left it
    with ImageService(str(tmp_path)) as again:
        host = reference.parse(again.list()[0].name).domain
        info = find_image(again, f"{host}/team/app:v1")
        assert info.id == built["config"]
        assert sorted(info.repo_tags()) == [f"{host}/team/app:v1"]
        assert info.repo_digests() == [f"{host}/team/app@{built['index']}"]
        resolved = again.resolve(f"{host}/team/app:v1")
        assert resolved.manifest.digest == built["manifest"]
        for layer in built["layers"]:
            assert again.content.exists(layer)
        assert again.content.list_ingests() == []
        assert again.leases.list() == []
    got = statuses(messages)
    l1, l2 = (layer.split(":")[1][:12] for layer in built["layers"])
    assert got[0] == "Pulling from team/app [v1]"  # the path, as dockerd prints it
    for lid in (l1, l2):
        assert f"Pulling fs layer [{lid}]" in got and f"Download complete [{lid}]" in got
        assert f"Verifying Checksum [{lid}]" in got
    assert any(s.startswith("Retrying in") for s in got)
    assert got[-2] == f"Digest: {built['index']}"
    assert got[-1].startswith("Status: Downloaded newer image for ") and got[-1].endswith("/team/app:v1")
    bars = [m for m in messages if m["status"] == "Downloading"]
    assert bars and all(m["progressDetail"]["current"] <= m["progressDetail"]["total"] for m in bars)


def test_pull_twice_is_up_to_date_and_by_digest(tmp_path: Any) -> None:
    _, _, _, results = pull(str(tmp_path), "{host}/team/app:v1", twice=True)
    second = statuses(results[1][1])
    assert results[1][0].up_to_date
    assert second[-1].startswith("Status: Image is up to date for ")
    assert not any("layer" in s or "Download" in s for s in second)


def test_pull_by_digest_records_no_tag(tmp_path: Any) -> None:
    reg = FakeRegistry()
    built = build_image(reg)
    _, _, _, [(result, _messages)] = pull(str(tmp_path), "{host}/team/app@" + built["manifest"])
    assert result.repo_digest == built["manifest"] and result.image_id == built["config"]
    with ImageService(str(tmp_path)) as svc:
        [record] = svc.list()
        assert record.name.endswith(f"/team/app@{built['manifest']}")


def test_unknown_tag_is_dockers_error(tmp_path: Any) -> None:
    with pytest.raises(NotFound) as e:
        pull(str(tmp_path), "{host}/team/app:nope")
    assert e.value.message.endswith("/team/app:nope not found: manifest unknown: manifest unknown")
    assert e.value.message.startswith("manifest for 127.0.0.1:")


def test_bad_credentials_are_refused(tmp_path: Any) -> None:
    with pytest.raises(Exception) as e:
        pull(str(tmp_path), "{host}/team/app:v1", creds=Credentials("u", "wrong"))
    assert "token" in str(e.value)


def test_corrupt_layer_is_never_committed(tmp_path: Any) -> None:
    def build(reg: FakeRegistry) -> Any:
        built = build_image(reg)
        reg.corrupt.add(built["layers"][1])
        return built

    with pytest.raises(InvalidArgument) as e:
        pull(str(tmp_path), "{host}/team/app:v1", build)
    assert "filesystem layer verification failed for digest" in e.value.message
    with ImageService(str(tmp_path)) as svc:
        assert svc.list() == []
        reg = FakeRegistry()
        assert not svc.content.exists(build_image(reg)["layers"][1])


def test_mirror_serves_docker_io_after_a_dead_one(tmp_path: Any) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    _, built, _, [(result, _)] = pull(str(tmp_path), "team/app:v1", mirrors=(dead, "http://{host}"))
    assert result.image_id == built["config"]
    with ImageService(str(tmp_path)) as svc:
        assert sorted(r.name for r in svc.list()) == ["docker.io/team/app:v1", f"docker.io/team/app@{built['index']}"]
