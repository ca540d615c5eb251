"""The S3 storage driver against a real S3 server (SeaweedFS, tests/support/seaweedfs.py).

1. The storage conformance suite (tests/unit/test_registry_storage.py) and the store suite
   (tests/unit/test_registry_store.py) run unchanged over S3Driver: their test functions are
   imported here and get ``drv`` / ``reg`` from this module (a fresh rootdirectory per test).
2. S3-specific behaviour: appends across the 5 MiB part boundary (UploadPartCopy), keys under
   rootdirectory, config validation, and a server without credentials.
3. End to end: ``dockyard-registry serve`` with an s3 YAML config (in-process aiohttp on loopback
   until cli.make_driver knows s3) takes a chunked upload in several PATCHes and a skopeo push +
   pull of a small OCI image.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.unit.test_registry_storage as storage_suite
import tests.unit.test_registry_store as store_suite
from dockyard.errors import InvalidArgument, Unavailable
from dockyard.registry.storage.s3 import S3Driver
from dockyard.registry.storage.s3_config import MIB
from dockyard.registry.storage.s3_writer import copy_ranges
from dockyard.registry.store import Registry
from tests.support.registries import RegistryClient, RegistryProcess, free_port, sha256
from tests.support.seaweedfs import SeaweedS3

pytestmark = [pytest.mark.interop]
run = storage_suite.run
_NOT_FOR_S3 = {"test_names", "test_filesystem_files_live_under_the_root", "test_big_blob_streams_with_flat_memory"}

for _prefix, _suite in (("test_storage_", storage_suite), ("test_store_", store_suite)):
    for _name, _fn in list(vars(_suite).items()):
        if _name.startswith("test_") and callable(_fn) and _name not in _NOT_FOR_S3:
            globals()[_prefix + _name[len("test_"):]] = _fn


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedS3]:
    with SeaweedS3() as server:
        yield server


def new_driver(server: SeaweedS3, **extra: Any) -> S3Driver:
    return S3Driver.from_config(server.driver_config(rootdirectory=f"/t/{uuid.uuid4().hex[:12]}/", **extra))


@pytest.fixture
def drv(seaweed: SeaweedS3) -> Iterator[S3Driver]:
    d = new_driver(seaweed)
    yield d
    d.close()


@pytest.fixture
def reg(drv: S3Driver) -> Registry:
    return Registry(drv)


# -- 2. S3 specifics ---------------------------------------------------------------------------------------------------
def test_s3_name_and_keys_live_under_rootdirectory(drv: S3Driver, seaweed: SeaweedS3) -> None:
    assert drv.name == "s3"
    run(drv.put("repositories/a/link", b"sha256:x"))
    root = drv.settings.root_directory
    c = seaweed.client()
    try:
        body = c.get_object(Bucket=seaweed.bucket, Key=f"{root}/repositories/a/link")["Body"].read()
    finally:
        c.close()
    assert body == b"sha256:x" and not root.startswith("/")


def test_s3_append_across_the_part_boundary(drv: S3Driver) -> None:
    """Small appends are re-uploaded, big ones continue with UploadPartCopy; parts are 5 MiB."""
    small = drv.settings.chunk_size  # c alone fills a part: a flush before close
    a, b, c = os.urandom(3 * MIB), os.urandom(3 * MIB), os.urandom(small + 123)
    async def go() -> None:
        for i, part in enumerate((a, b, c, b"tail")):
            w = await drv.writer("up/data", append=True)
            assert w.size == [0, len(a), len(a + b), len(a + b + c)][i]
            await w.write(part[:1000])
            await w.write(part[1000:])
            await w.close()
        w = await drv.writer("up/data", append=True)  # nothing appended: unchanged
        await w.close()
        data = b"".join([x async for x in drv.reader("up/data")])
        assert hashlib.sha256(data).digest() == hashlib.sha256(a + b + c + b"tail").digest()
        info = await drv.stat("up/data")
        assert info is not None and info.size == len(data)
    run(go())


def test_s3_copy_ranges_respect_part_limits() -> None:
    assert copy_ranges(5 * MIB) == [(0, 5 * MIB - 1)]
    ranges = copy_ranges(11 * MIB, limit=5 * MIB)
    assert ranges[0][0] == 0 and ranges[-1][1] == 11 * MIB - 1 and len(ranges) == 3
    assert all(last - first + 1 >= 3 * MIB for first, last in ranges)


def test_s3_config_validation() -> None:
    cases = {("bucket", ""): "storage.s3.bucket", ("v4auth", False): "storage.s3.v4auth",
             ("chunksize", "1024"): "storage.s3.chunksize", ("secure", "maybe"): "storage.s3.secure",
             ("storageclass", "GOLD"): "storage.s3.storageclass", ("nosuch", 1): "storage.s3.nosuch",
             ("accesskey", "only-one"): "storage.s3.accesskey"}
    for (key, value), where in cases.items():
        with pytest.raises(InvalidArgument, match=where.replace(".", r"\.")):
            S3Driver.from_config({"bucket": "b", key: value})
    d = S3Driver.from_config({"bucket": "b", "regionendpoint": "s3.example:9000", "secure": "false",
                              "chunksize": str(6 * MIB), "encrypt": True, "keyid": "k1", "storageclass": "none",
                              "rootdirectory": "/reg/"})
    s = d.settings
    assert (s.endpoint, s.chunk_size, s.root_directory, s.region) == ("http://s3.example:9000", 6 * MIB, "reg",
                                                                      "us-east-1")
    assert s.write_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    assert s.access_key is None  # the default chain (AWS_* environment) applies
    d.close()


def test_s3_credentials_from_the_environment(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty accesskey/secretkey: boto3's default chain (AWS_* variables) signs; a wrong secret is refused."""
    raw = {k: v for k, v in seaweed.driver_config(rootdirectory="env").items() if k not in ("accesskey", "secretkey")}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", str(seaweed.access_key))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", str(seaweed.secret_key))
    d = S3Driver.from_config(raw)
    try:
        run(d.put("a/b", b"signed"))
        assert run(d.get("a/b")) == b"signed" and run(d.list("a")) == ["b"]
    finally:
        d.close()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    d = S3Driver.from_config(raw)
    try:
        with pytest.raises(Unavailable, match="SignatureDoesNotMatch|AccessDenied"):
            run(d.get("a/b"))
    finally:
        d.close()


# -- 3. end to end -----------------------------------------------------------------------------------------------------
class InProcessRegistry:
    """create_app(Registry(S3Driver)) served by aiohttp on 127.0.0.1 from a background thread."""

    def __init__(self, driver: S3Driver) -> None:
        self.driver = driver
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: Any = None

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "InProcessRegistry":
        from aiohttp import web

        from dockyard.registry.server.app import create_app
        self._thread.start()
        async def start() -> Any:
            runner = web.AppRunner(create_app(Registry(self.driver)))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner
        self._runner = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def s3_config_yaml(raw: dict[str, Any], addr: str) -> str:
    """A dockyard-registry (and distribution) config storing in S3 (JSON scalars are valid YAML)."""
    lines = ["version: 0.1", "storage:", "  s3:"]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in raw.items()]
    lines += ["  delete:", "    enabled: true", "http:", f"  addr: {json.dumps(addr)}", ""]
    return "\n".join(lines)


class ServeS3(RegistryProcess):
    """``dockyard-registry serve config.yml`` with ``storage: {s3: ...}``."""

    def __init__(self, root: str, s3: dict[str, Any]) -> None:
        super().__init__("dockyard", root)
        self.s3 = s3

    def start(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        try:
            for attempt in range(3):
                self.port = free_port()
                Path(self.config_path).write_text(s3_config_yaml(self.s3, self.host_port))
                if self._launch(last=attempt == 2):
                    return
        except BaseException:
            self.stop()
            raise


def cli_serves_s3() -> bool:
    """Whether cli.make_driver builds the S3 driver yet (until then the app runs in-process)."""
    from dockyard.registry import cli
    return "s3" in inspect.getsource(cli.make_driver)


@pytest.fixture(scope="module")
def server(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The registry over S3 (5 MiB parts): the real ``serve`` once wired, else the app in-process."""
    raw = seaweed.driver_config(rootdirectory=f"/e2e/{uuid.uuid4().hex[:12]}", chunksize=5 * MIB)
    if cli_serves_s3():
        with ServeS3(str(tmp_path_factory.mktemp("serve-s3")), raw) as srv:
            yield srv
        return
    d = S3Driver.from_config(raw)
    with InProcessRegistry(d) as local:
        yield local
    d.close()


def test_s3_registry_chunked_upload_in_several_patches(server: Any) -> None:
    client = RegistryClient(server.host_port)
    data = os.urandom(13 * MIB + 77)
    start = client.request("POST", "/v2/e2e/chunked/blobs/uploads/")
    assert start.status == 202, start.body
    location, offset = start.headers["Location"], 0
    for size in (2 * MIB, 4 * MIB, 6 * MIB, MIB):  # crosses 5 MiB: re-upload, then UploadPartCopy
        r = client.patch(location, data[offset:offset + size], offset)
        assert r.status == 202, r.body
        offset += size
        assert r.headers["Range"] == f"0-{offset - 1}"
        location = r.headers["Location"]
    sep = "&" if "?" in location else "?"
    done = client.request("PUT", f"{location}{sep}digest={sha256(data)}", data[offset:],
                          {"Content-Type": "application/octet-stream"})
    assert done.status == 201, done.body
    got = client.request("GET", f"/v2/e2e/chunked/blobs/{sha256(data)}")
    assert got.status == 200 and got.body == data
    part = client.request("GET", f"/v2/e2e/chunked/blobs/{sha256(data)}", headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == data[10:20]


def _oci_layout(root: Path) -> str:
    """A one-layer OCI image layout at ``root``; returns its manifest digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        payload = b"hello from s3\n" * 1000
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    raw = tar_bytes.getvalue()
    layer = blob(gzip.compress(raw, mtime=0))
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}"]}}
                             ).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    return manifest["digest"]


def _skopeo(tmp: Path, *args: str) -> str:
    env = {**os.environ, "HOME": str(tmp), "XDG_RUNTIME_DIR": str(tmp)}
    r = subprocess.run(["skopeo", "--insecure-policy", *args], check=False, capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, f"skopeo {' '.join(args)}: rc={r.returncode}\n{r.stderr}"
    return r.stdout


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_s3_registry_skopeo_push_and_pull(server: Any, tmp_path: Path) -> None:
    digest = _oci_layout(tmp_path / "src")
    img = f"docker://{server.host_port}/e2e/hello"
    _skopeo(tmp_path, "copy", "--dest-tls-verify=false", f"oci:{tmp_path}/src:v1", f"{img}:v1")
    info = json.loads(_skopeo(tmp_path, "inspect", "--tls-verify=false", f"{img}:v1"))
    assert info["Digest"] == digest and len(info["Layers"]) == 1
    _skopeo(tmp_path, "copy", "--src-tls-verify=false", f"{img}:v1", f"oci:{tmp_path}/back:v1")
    back = json.loads((tmp_path / "back" / "index.json").read_text())
    assert back["manifests"][0]["digest"] == digest
    for name in os.listdir(tmp_path / "src" / "blobs" / "sha256"):
        assert (tmp_path / "back" / "blobs" / "sha256" / name).read_bytes() == \
            (tmp_path / "src" / "blobs" / "sha256" / name).read_bytes()
    tags = json.loads(_skopeo(tmp_path, "list-tags", "--tls-verify=false", img))
    assert tags["Tags"] == ["v1"]
