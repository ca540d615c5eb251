"""The registry's HTTP API over the real Registry facade (in-memory and filesystem drivers)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store.registry import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
API = ("Docker-Distribution-API-Version", "registry/2.0")

Test = Callable[[TestClient], Awaitable[None]]


def run(test: Test, *, driver: str = "inmemory", delete_enabled: bool = True) -> None:
    """Run ``test`` against a fresh registry app served on a loopback port."""
    tmp = tempfile.mkdtemp(prefix="dockyard-reg-test-")

    async def main() -> None:
        drv = FilesystemDriver(tmp) if driver == "filesystem" else InMemoryDriver()
        app = create_app(Registry(drv, delete_enabled=delete_enabled))
        server = TestServer(app)
        await server.start_server(**runner_options())  # TestServer's own kwargs do not reach AppRunner
        async with TestClient(server) as client:
            await test(client)

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_blob(client: TestClient, name: str, data: bytes) -> str:
    d = sha(data)
    resp = await client.post(f"/v2/{name}/blobs/uploads/?digest={d}", data=data)
    assert resp.status == 201, await resp.text()
    return d


async def errors_of(resp: Any) -> list[str]:
    body = await resp.json()
    return [e["code"] for e in body["errors"]]


def manifest(config: str, layers: list[str], sizes: dict[str, int], **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                   "size": sizes[config]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": sizes[d]}
                   for d in layers],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


async def push_image(client: TestClient, name: str, tag: str, **extra: Any) -> tuple[str, bytes]:
    """Push a config, a layer and a manifest naming them under ``tag``; (digest, manifest bytes)."""
    cfg, layer = b'{"architecture":"amd64","os":"linux"}', b"layer-" + tag.encode()
    dc, dl = await push_blob(client, name, cfg), await push_blob(client, name, layer)
    body = manifest(dc, [dl], {dc: len(cfg), dl: len(layer)}, **extra)
    resp = await client.put(f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == f"/v2/{name}/manifests/{sha(body)}"
    subject = extra.get("subject")
    assert resp.headers.get("OCI-Subject") == (subject["digest"] if subject else None)
    return resp.headers["Docker-Content-Digest"], body


def test_base_endpoint_and_api_header_everywhere() -> None:
    async def t(c: TestClient) -> None:
        resp = await c.get("/v2/")
        assert resp.status == 200 and resp.headers[API[0]] == API[1]
        assert await resp.json() == {}
        resp = await c.get("/v2/x/blobs/" + sha(b"nope"))
        assert resp.status == 404 and resp.headers[API[0]] == API[1]
        resp = await c.get("/nothing-here")
        assert resp.status == 404 and resp.headers[API[0]] == API[1]
    run(t)


@pytest.mark.parametrize("driver", ["inmemory", "filesystem"])
def test_monolithic_push_then_get_head_and_ranges(driver: str) -> None:
    data = bytes(range(256)) * 40

    async def t(c: TestClient) -> None:
        d = sha(data)
        resp = await c.post(f"/v2/library/busybox/blobs/uploads/?digest={d}", data=data)
        assert resp.status == 201
        assert resp.headers["Location"] == f"/v2/library/busybox/blobs/{d}"
        assert resp.headers["Docker-Content-Digest"] == d
        resp = await c.head(f"/v2/library/busybox/blobs/{d}")
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(data))
        assert resp.headers["Docker-Content-Digest"] == d and await resp.read() == b""
        assert resp.headers["Content-Type"] == "application/octet-stream"
        resp = await c.get(f"/v2/library/busybox/blobs/{d}")
        assert resp.status == 200 and await resp.read() == data
        resp = await c.get(f"/v2/library/busybox/blobs/{d}", headers={"Range": "bytes=10-19"})
        assert resp.status == 206 and await resp.read() == data[10:20]
        assert resp.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        resp = await c.get(f"/v2/library/busybox/blobs/{d}", headers={"Range": "bytes=10000-"})
        assert resp.status == 206 and await resp.read() == data[10000:]
        resp = await c.get(f"/v2/library/busybox/blobs/{d}", headers={"Range": f"bytes={len(data)}-"})
        assert resp.status == 416
        # linked only in the repository it was pushed to
        resp = await c.get(f"/v2/other/blobs/{d}")
        assert resp.status == 404 and await errors_of(resp) == ["BLOB_UNKNOWN"]
    run(t, driver=driver)


def test_post_then_put_and_location_headers() -> None:
    data = b"hello registry"

    async def t(c: TestClient) -> None:
        resp = await c.post("/v2/a/b/c/blobs/uploads/")
        assert resp.status == 202
        loc, uuid = resp.headers["Location"], resp.headers["Docker-Upload-UUID"]
        assert loc == f"/v2/a/b/c/blobs/uploads/{uuid}" and resp.headers["Range"] == "0-0"
        resp = await c.put(f"{loc}?digest={sha(data)}", data=data,
                           headers={"Content-Type": "application/octet-stream"})
        assert resp.status == 201 and resp.headers["Location"] == f"/v2/a/b/c/blobs/{sha(data)}"
        resp = await c.get(f"/v2/a/b/c/blobs/{sha(data)}")
        assert await resp.read() == data
        resp = await c.get(loc)  # the session is gone once closed
        assert resp.status == 404 and await errors_of(resp) == ["BLOB_UPLOAD_UNKNOWN"]
    run(t)


def test_chunked_upload_status_out_of_order_and_last_chunk_on_put() -> None:
    data = b"0123456789abcdefghij"

    async def t(c: TestClient) -> None:
        loc = (await c.post("/v2/repo/blobs/uploads/")).headers["Location"]
        resp = await c.patch(loc, data=data[:8], headers={"Content-Range": "0-7"})
        assert resp.status == 202 and resp.headers["Range"] == "0-7" and resp.headers["Location"] == loc
        resp = await c.patch(loc, data=data[10:12], headers={"Content-Range": "10-11"})
        assert resp.status == 416 and await errors_of(resp) == ["RANGE_INVALID"]
        resp = await c.patch(loc, data=data[8:10], headers={"Content-Range": "8-12"})
        assert resp.status == 400 and await errors_of(resp) == ["SIZE_INVALID"]
        resp = await c.get(loc)
        assert resp.status == 204 and resp.headers["Range"] == "0-7"
        resp = await c.patch(loc, data=data[8:15])  # streamed, no Content-Range
        assert resp.status == 202 and resp.headers["Range"] == "0-14"
        resp = await c.put(f"{loc}?digest={sha(data)}", data=data[15:])
        assert resp.status == 201
        assert await (await c.get(f"/v2/repo/blobs/{sha(data)}")).read() == data
    run(t)


def test_wrong_digest_missing_digest_and_cancel() -> None:
    async def t(c: TestClient) -> None:
        loc = (await c.post("/v2/repo/blobs/uploads/")).headers["Location"]
        resp = await c.put(loc, data=b"x")
        assert resp.status == 400 and await errors_of(resp) == ["DIGEST_INVALID"]
        resp = await c.put(f"{loc}?digest={sha(b'other')}", data=b"x")
        assert resp.status == 400 and await errors_of(resp) == ["DIGEST_INVALID"]
        assert (await c.head(f"/v2/repo/blobs/{sha(b'x')}")).status == 404
        loc = (await c.post("/v2/repo/blobs/uploads/")).headers["Location"]
        assert (await c.delete(loc)).status == 204
        resp = await c.patch(loc, data=b"x")
        assert resp.status == 404 and await errors_of(resp) == ["BLOB_UPLOAD_UNKNOWN"]
        resp = await c.post("/v2/repo/blobs/uploads/?digest=sha256:zz", data=b"x")
        assert resp.status == 400 and await errors_of(resp) == ["DIGEST_INVALID"]
    run(t)


def test_cross_repository_mount() -> None:
    async def t(c: TestClient) -> None:
        d = await push_blob(c, "src/repo", b"shared layer")
        resp = await c.post(f"/v2/dst/blobs/uploads/?mount={d}&from=src/repo")
        assert resp.status == 201 and resp.headers["Location"] == f"/v2/dst/blobs/{d}"
        assert await (await c.get(f"/v2/dst/blobs/{d}")).read() == b"shared layer"
        resp = await c.post(f"/v2/dst2/blobs/uploads/?mount={sha(b'absent')}&from=src/repo")
        assert resp.status == 202 and resp.headers["Location"].startswith("/v2/dst2/blobs/uploads/")
    run(t)


def test_manifest_put_get_head_delete() -> None:
    async def t(c: TestClient) -> None:
        digest, body = await push_image(c, "library/busybox", "latest")
        assert digest == sha(body)
        for ref in ("latest", digest):
            resp = await c.get(f"/v2/library/busybox/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
            assert resp.status == 200 and await resp.read() == body
            assert resp.headers["Content-Type"] == OCI_MANIFEST and resp.headers["Docker-Content-Digest"] == digest
        resp = await c.head("/v2/library/busybox/manifests/latest")
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(body))
        resp = await c.delete("/v2/library/busybox/manifests/latest")
        assert resp.status == 202
        resp = await c.get("/v2/library/busybox/manifests/latest")
        assert resp.status == 404 and await errors_of(resp) == ["MANIFEST_UNKNOWN"]
        assert (await c.get(f"/v2/library/busybox/manifests/{digest}")).status == 200
        assert (await c.delete(f"/v2/library/busybox/manifests/{digest}")).status == 202
        assert (await c.get(f"/v2/library/busybox/manifests/{digest}")).status == 404
    run(t)


def test_manifest_errors() -> None:
    async def t(c: TestClient) -> None:
        missing = sha(b"missing")
        body = manifest(missing, [], {missing: 7})
        resp = await c.put("/v2/r/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
        assert resp.status == 400 and await errors_of(resp) == ["MANIFEST_BLOB_UNKNOWN"]
        big = b"{" + b" " * (4 << 20) + b"}"
        resp = await c.put("/v2/r/manifests/v1", data=big, headers={"Content-Type": OCI_MANIFEST})
        assert resp.status == 413 and await errors_of(resp) == ["MANIFEST_INVALID"]
        resp = await c.put("/v2/r/manifests/bad:tag!", data=b"{}", headers={"Content-Type": OCI_MANIFEST})
        assert resp.status == 400
        resp = await c.head("/v2/r/manifests/nope")
        assert resp.status == 404 and await resp.read() == b""
    run(t)


def test_subject_and_referrers() -> None:
    async def t(c: TestClient) -> None:
        subject, body = await push_image(c, "app", "v1")
        desc = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)}
        ref_digest, ref_body = await push_image(c, "app", "sig", subject=desc, artifactType="application/x.sig")
        resp = await c.put(f"/v2/app/manifests/{ref_digest}", data=ref_body,
                           headers={"Content-Type": OCI_MANIFEST})  # by digest, same answer
        assert resp.status == 201 and resp.headers["OCI-Subject"] == subject
        resp = await c.get(f"/v2/app/referrers/{subject}")
        assert resp.status == 200 and resp.headers["Content-Type"] == OCI_INDEX
        index = await resp.json()
        assert [m["digest"] for m in index["manifests"]] == [ref_digest]
        assert index["manifests"][0]["artifactType"] == "application/x.sig"
        assert "OCI-Filters-Applied" not in resp.headers
        resp = await c.get(f"/v2/app/referrers/{subject}?artifactType=application/other")
        assert resp.headers["OCI-Filters-Applied"] == "artifactType"
        assert (await resp.json())["manifests"] == []
        resp = await c.get(f"/v2/app/referrers/{sha(b'no subject')}")
        assert resp.status == 200 and (await resp.json())["manifests"] == []
        resp = await c.get("/v2/app/referrers/not-a-digest")
        assert resp.status == 400 and await errors_of(resp) == ["DIGEST_INVALID"]
    run(t)


def test_tags_list_paging() -> None:
    async def t(c: TestClient) -> None:
        for tag in ("c", "a", "b", "d"):
            await push_image(c, "x/y", tag)
        resp = await c.get("/v2/x/y/tags/list")
        assert await resp.json() == {"name": "x/y", "tags": ["a", "b", "c", "d"]} and "Link" not in resp.headers
        resp = await c.get("/v2/x/y/tags/list?n=2")
        assert (await resp.json())["tags"] == ["a", "b"]
        assert resp.headers["Link"] == '</v2/x/y/tags/list?n=2&last=b>; rel="next"'
        resp = await c.get("/v2/x/y/tags/list?n=2&last=b")
        assert (await resp.json())["tags"] == ["c", "d"] and "Link" not in resp.headers
        resp = await c.get("/v2/x/y/tags/list?n=0")
        assert (await resp.json())["tags"] == [] and "Link" not in resp.headers
        resp = await c.get("/v2/x/y/tags/list?n=-1")
        assert resp.status == 400 and await errors_of(resp) == ["PAGINATION_NUMBER_INVALID"]
        resp = await c.get("/v2/unknown/tags/list")
        assert resp.status == 404 and await errors_of(resp) == ["NAME_UNKNOWN"]
    run(t)


def test_catalog_paging_and_nested_names() -> None:
    async def t(c: TestClient) -> None:
        for name in ("library/busybox", "a/b/c", "zeta", "a"):
            await push_blob(c, name, name.encode())
        resp = await c.get("/v2/_catalog")
        assert await resp.json() == {"repositories": ["a", "a/b/c", "library/busybox", "zeta"]}
        resp = await c.get("/v2/_catalog?n=3")
        assert (await resp.json())["repositories"] == ["a", "a/b/c", "library/busybox"]
        assert resp.headers["Link"] == '</v2/_catalog?n=3&last=library%2Fbusybox>; rel="next"'
        resp = await c.get("/v2/_catalog?n=3&last=library/busybox")
        assert (await resp.json())["repositories"] == ["zeta"] and "Link" not in resp.headers
    run(t)


def test_names_with_resource_words_and_invalid_names() -> None:
    async def t(c: TestClient) -> None:
        d = await push_blob(c, "team/manifests/tools", b"odd name")
        assert await (await c.get(f"/v2/team/manifests/tools/blobs/{d}")).read() == b"odd name"
        resp = await c.post("/v2/Upper/blobs/uploads/")
        assert resp.status == 400 and await errors_of(resp) == ["NAME_INVALID"]
        body = await resp.json()
        assert set(body["errors"][0]) == {"code", "message", "detail"}
    run(t)


def test_blob_delete_and_delete_disabled() -> None:
    async def t(c: TestClient) -> None:
        d = await push_blob(c, "r", b"to delete")
        resp = await c.delete(f"/v2/r/blobs/{d}")
        assert resp.status == 202
        assert (await c.get(f"/v2/r/blobs/{d}")).status == 404

    async def disabled(c: TestClient) -> None:
        d = await push_blob(c, "r", b"kept")
        resp = await c.delete(f"/v2/r/blobs/{d}")
        assert resp.status == 405 and await errors_of(resp) == ["UNSUPPORTED"]
        digest, _ = await push_image(c, "r", "v1")
        resp = await c.delete(f"/v2/r/manifests/{digest}")
        assert resp.status == 405 and await errors_of(resp) == ["UNSUPPORTED"]
    run(t)
    run(disabled, delete_enabled=False)


def test_chunked_transfer_bodies_are_streamed() -> None:
    part = b"z" * 100_000

    async def gen(n: int) -> Any:
        for _ in range(n):
            yield part

    async def t(c: TestClient) -> None:
        loc = (await c.post("/v2/r/blobs/uploads/")).headers["Location"]
        resp = await c.patch(loc, data=gen(3))
        assert resp.status == 202 and resp.headers["Range"] == f"0-{3 * len(part) - 1}"
        whole = part * 5
        resp = await c.put(f"{loc}?digest={sha(whole)}", data=gen(2))
        assert resp.status == 201
        resp = await c.get(f"/v2/r/blobs/{sha(whole)}", headers={"Range": "bytes=-10"})
        assert resp.status == 206 and await resp.read() == whole[-10:]
    run(t, driver="filesystem")


class _Broken(Registry):
    async def catalog(self) -> list[str]:
        raise RuntimeError("disk on fire")


def test_access_log_has_the_final_status_of_sendfile_ranges(caplog: pytest.LogCaptureFixture) -> None:
    async def t(c: TestClient) -> None:
        d = await push_blob(c, "r", b"0123456789")
        assert (await c.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=2-3"})).status == 206

    with caplog.at_level("INFO", logger="dockyard.registry.http"):
        run(t, driver="filesystem")
    lines = [r.getMessage() for r in caplog.records if r.name == "dockyard.registry.http"]
    assert len(lines) == 2 and lines[0].startswith('127.0.0.1 "POST /v2/r/blobs/uploads/?digest=sha256')
    assert '"GET /v2/r/blobs/sha256:' in lines[1] and '" 206 ' in lines[1]


def test_unexpected_failure_is_500_unknown_and_requests_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server = TestServer(create_app(_Broken(InMemoryDriver())))
        await server.start_server(**runner_options())
        async with TestClient(server) as c:
            resp = await c.get("/v2/_catalog")
            assert resp.status == 500 and await errors_of(resp) == ["UNKNOWN"]
            assert resp.headers[API[0]] == API[1]

    with caplog.at_level("INFO", logger="dockyard.registry.http"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "dockyard.registry.http"]
    assert any('"GET /v2/_catalog" 500' in line for line in lines)


def test_short_monolithic_body_leaves_no_upload_behind() -> None:
    root = tempfile.mkdtemp(prefix="dockyard-reg-test-")

    async def main() -> None:
        server = TestServer(create_app(Registry(FilesystemDriver(root))))
        await server.start_server()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            d = sha(b"x" * 100)
            writer.write(f"POST /v2/r/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 100\r\n\r\n".encode() + b"x" * 10)
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()  # the client goes away mid-body
            await asyncio.sleep(0.3)
        finally:
            await server.close()

    try:
        asyncio.run(main())
        uploads = os.path.join(root, "repositories", "r", "_uploads")
        assert not os.path.isdir(uploads) or os.listdir(uploads) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
