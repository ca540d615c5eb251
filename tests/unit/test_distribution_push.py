"""dockyard.distribution push, login and inspect against an in-process dockyard-registry (no root).

The registry is the real aiohttp app over the in-memory driver (optionally with htpasswd auth); the
image is a `docker save` archive loaded into a real ImageService (uncompressed layers, like a
committed image), so the push builds a schema2 manifest with gzip layers. Pulling it back with
the Puller into a second store must give the same image ID.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from dockyard.distribution.client import Credentials
from dockyard.distribution.inspect import inspect
from dockyard.distribution.login import credentials_of, login, server_domain
from dockyard.distribution.manifests import parse_platform
from dockyard.distribution.progress import Progress
from dockyard.distribution.pull import Puller
from dockyard.distribution.push import Pusher, manifest_bytes, parse_push_ref
from dockyard.errors import DockyardError, InvalidArgument, NotFound, Unauthorized
from dockyard.oci import reference
from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store.registry import Registry
from dockyard.supervisor.images import ID_LABEL, ImageService
from tests.support.images import docker_archive, layer_tar

USER, PASSWORD = "dockyard", "right-pass"


async def run_blocking(fn: Callable[..., Any], *a: Any, **k: Any) -> Any:
    return fn(*a, **k)


def serve(test: Callable[[str, Registry], Awaitable[None]], auth: Any = None) -> None:
    """Run ``test(host_port, registry)`` against an in-memory dockyard-registry on loopback."""
    async def main() -> None:
        registry = Registry(InMemoryDriver())
        server = TestServer(create_app(registry, auth=auth), host="127.0.0.1")
        await server.start_server(**runner_options())
        try:
            await test(f"127.0.0.1:{server.port}", registry)
        finally:
            await server.close()
    asyncio.run(main())


def local_image(root: Path, name: str) -> tuple[ImageService, str]:
    svc = ImageService(str(root))
    layers = [layer_tar({"etc/": None, "etc/base": b"base" * 5000}), layer_tar({"data": b"top" * 70000})]
    svc.load(io.BytesIO(docker_archive([([name], layers)])))
    return svc, svc.get(name).labels[ID_LABEL]


async def push(svc: ImageService, ref_text: str, creds: Credentials | None = None) -> list[dict[str, Any]]:
    progress = Progress(_drop)
    await Pusher(svc, run_blocking, backoff=0).push(parse_push_ref(ref_text, ""), creds, progress)
    return progress.messages


async def _drop(message: dict[str, Any]) -> None:
    pass


def lines(messages: list[dict[str, Any]]) -> list[str]:
    """"id: status" lines without the throttled "Pushing" bars."""
    return [f"{m['id']}: {m['status']}" if "id" in m else m.get("status", "<aux>")
            for m in messages if m.get("status") != "Pushing"]


def test_push_builds_gzip_schema2_and_pulls_back(tmp_path: Path) -> None:
    async def test(host: str, registry: Registry) -> None:
        svc, image_id = local_image(tmp_path / "a", f"{host}/acc/push:v1")
        resolved = svc.resolve(f"{host}/acc/push:v1")
        ids = [d.removeprefix("sha256:")[:12] for d in resolved.diff_ids]
        first = await push(svc, f"{host}/acc/push:v1")
        data, media_type, digest = await registry.get_manifest("acc/push", "v1")
        assert lines(first)[:3] == [f"The push refers to repository [{host}/acc/push]",
                                    f"{ids[1]}: Preparing", f"{ids[0]}: Preparing"]
        assert sorted(lines(first)[3:5]) == sorted(f"{i}: Pushed" for i in ids)
        assert lines(first)[5:] == [f"v1: digest: {digest} size: {len(data)}", "<aux>"]
        assert first[-1] == {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": len(data)}}
        assert any(m.get("status") == "Pushing" and m["progressDetail"]["total"] > 0 for m in first)
        doc = json.loads(data)
        assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
        assert data == manifest_bytes(doc["config"], doc["layers"]) and b'\n   "schemaVersion": 2,' in data
        assert doc["config"]["digest"] == image_id
        for layer, local in zip(doc["layers"], resolved.layers):
            assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
            blob = b"".join([c async for c in registry.blob_reader("acc/push", layer["digest"])])
            assert gzip.decompress(blob) == svc.content.read(local.digest)
        assert svc.get(f"{host}/acc/push@{digest}").labels[ID_LABEL] == image_id  # the RepoDigest
        again = await push(svc, f"{host}/acc/push:v1")
        assert sorted(lines(again)[3:5]) == sorted(f"{i}: Layer already exists" for i in ids)
        assert lines(again)[-2] == f"v1: digest: {digest} size: {len(data)}"
        svc.tag(f"{host}/acc/push:v1", f"{host}/acc/other:v2")
        mounted = await push(svc, f"{host}/acc/other")  # no tag: every tag of the repository
        assert sorted(lines(mounted)[3:5]) == sorted(f"{i}: Mounted from acc/push" for i in ids)
        svc.close()
        pulled = ImageService(str(tmp_path / "b"))
        result = await Puller(pulled, run_blocking, unpack=False).pull(
            reference.parse(f"{host}/acc/other:v2"), None, Progress(_drop))
        assert result.image_id == image_id and result.repo_digest == digest
        # a pulled image (compressed layers) is pushed with its exact manifest
        pulled.tag(f"{host}/acc/other:v2", f"{host}/acc/copy:v3")
        copied = await push(pulled, f"{host}/acc/copy:v3")
        assert lines(copied)[-2] == f"v3: digest: {digest} size: {len(data)}"
        assert sorted(lines(copied)[3:5]) == sorted(f"{i}: Mounted from acc/other" for i in ids)
        described = await inspect(reference.parse(f"{host}/acc/copy:v3"), None)
        assert described == {"Descriptor": {"mediaType": media_type, "digest": digest, "size": len(data)},
                             "Platforms": [{"architecture": "amd64", "os": "linux"}]}
        pulled.close()
    serve(test)


def test_push_errors(tmp_path: Path) -> None:
    async def test(host: str, registry: Registry) -> None:
        svc, _ = local_image(tmp_path, f"{host}/acc/push:v1")
        with pytest.raises(NotFound, match="^An image does not exist locally with the tag: "
                                            f"{host}/acc/nothing$"):
            await push(svc, f"{host}/acc/nothing:v1")
        with pytest.raises(NotFound, match=f"^tag does not exist: {host}/acc/push:v9$"):
            await push(svc, f"{host}/acc/push:v9")
        with pytest.raises(DockyardError, match="manifest unknown"):
            await inspect(reference.parse(f"{host}/acc/push:v1"), None)
        svc.close()
    serve(test)
    with pytest.raises(InvalidArgument, match="cannot push a digest reference"):
        parse_push_ref("x@sha256:" + "a" * 64, "")


def _htpasswd_auth(tmp: Path) -> Any:
    from dockyard.registry.auth import build as build_auth
    from dockyard.registry.auth.htpasswd import hash_password
    from dockyard.registry.auth.settings import HtpasswdSettings

    users = tmp / "htpasswd"
    users.write_text(f"{USER}:{hash_password(PASSWORD, rounds=4)}\n")
    return build_auth(HtpasswdSettings(realm="test", path=str(users)))


def test_login_and_push_with_basic_auth(tmp_path: Path) -> None:
    try:
        auth = _htpasswd_auth(tmp_path)
    except (ImportError, TypeError) as e:
        pytest.skip(f"registry auth setup differs: {e}")

    async def test(host: str, registry: Registry) -> None:
        ok = await login(host, Credentials(USER, PASSWORD))
        assert (ok.status, ok.identity_token) == ("Login Succeeded", "")
        with pytest.raises(DockyardError) as e:
            await login(host, Credentials(USER, "wrong"))
        assert e.value.message == f"login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"
        svc, _ = local_image(tmp_path / "s", f"{host}/auth/push:1")
        with pytest.raises(Unauthorized, match="^no basic auth credentials$"):
            await push(svc, f"{host}/auth/push:1")
        done = await push(svc, f"{host}/auth/push:1", Credentials(USER, PASSWORD))
        assert done[-1]["aux"]["Tag"] == "1"
        svc.close()
    serve(test, auth)


def test_small_parsers() -> None:
    assert server_domain("https://index.docker.io/v1/") == "docker.io"
    assert server_domain("http://127.0.0.1:5000/x") == "127.0.0.1:5000"
    assert credentials_of({"username": "u", "password": "p", "serveraddress": "h:1"}) == \
        ("h:1", Credentials("u", "p"))
    p = parse_platform("linux/arm64/v8")
    assert (p.os, p.architecture, p.variant) == ("linux", "arm64", "v8")
    with pytest.raises(InvalidArgument):
        parse_platform("linux")
    assert hashlib.sha256(manifest_bytes({"digest": "sha256:" + "0" * 64, "size": 1}, [])).hexdigest()


def test_five_uploads_at_a_time_the_rest_wait(tmp_path: Path) -> None:
    async def test(host: str, registry: Registry) -> None:
        svc = ImageService(str(tmp_path))
        layers = [layer_tar({f"f{i}": bytes([i]) * 1000}) for i in range(7)]
        svc.load(io.BytesIO(docker_archive([([f"{host}/acc/many:1"], layers)])))
        out = lines(await push(svc, f"{host}/acc/many:1"))
        diff_ids = svc.resolve(f"{host}/acc/many:1").diff_ids
        top_first = [d.removeprefix("sha256:")[:12] for d in reversed(diff_ids)]
        assert out[1:8] == [f"{i}: Preparing" for i in top_first]
        assert out[8:10] == [f"{i}: Waiting" for i in top_first[5:]]
        assert sorted(out[10:17]) == sorted(f"{i}: Pushed" for i in top_first)
        svc.close()
    serve(test)
