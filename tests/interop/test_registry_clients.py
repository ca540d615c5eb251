"""Registry acceptance with real clients, every case against distribution 2.8 AND dockyard-registry.

Each registry runs once per module (tests/support/registries.py: its own root, a free loopback
port); ``registry`` parametrizes every case over both, distribution first: it is the reference.
1. The real dockerd (own roots, no host networking: push/pull go over loopback) builds a 3-layer
   image without a builder (import + commit + commit, one layer 8 MiB), pushes it, pushes it to a
   second repository (3 cross-repo mounts), forgets it, pulls it back by tag and by digest (same
   image ID, same RepoDigests digest) and runs it.
2. skopeo copies a docker-archive in (schema2 and OCI), inspects, copies registry to registry and
   back out (oci: layout, dir:), deletes, lists tags.
3. Protocol details over http.client. Each scenario returns observations (statuses, error codes,
   headers) that must equal SPEC; DISTRIBUTION_2_8 records where distribution 2.8 differs from the
   spec (checked too, so the reference's behaviour is pinned). A dockyard failure is a bug to fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon
from tests.support.registries import (
    OCI_MANIFEST,
    RegistryClient,
    RegistryProcess,
    insecure_args,
    sha256,
)

pytestmark = [pytest.mark.interop, pytest.mark.privileged]
SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
OCTETS = {"Content-Type": "application/octet-stream"}
ACCEPT = {"Accept": f"{OCI_MANIFEST}, {SCHEMA2}"}  # distribution 2.8 hides an OCI manifest from other clients


@pytest.fixture(scope="module")
def daemon(servers: dict[str, RegistryProcess | str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd that trusts both registries over plain HTTP."""
    hostclean.sweep_stale()
    with DockerDaemon(log_dir=str(tmp_path_factory.mktemp("registry-dockerd-logs")),
                      extra_args=insecure_args(servers)).running() as d:
        yield d



def _inspect(d: DockerDaemon, ref: str) -> dict[str, Any]:
    return json.loads(d.docker_ok("image", "inspect", ref))[0]


def _build(d: DockerDaemon, prefix: str, scripts: list[str]) -> list[str]:
    """busybox imported as ``<prefix>-0``, then one committed image per script; their names."""
    names = [f"{prefix}-0:latest"]
    d.load_busybox(names[0])
    for i, script in enumerate(scripts, 1):
        container = f"{prefix}-c{i}"
        d.docker_ok("run", "--name", container, "--network", "none", names[-1], "sh", "-c", script)
        names.append(f"{prefix}-{i}:latest")
        d.docker_ok("commit", container, names[-1])
        d.docker_ok("rm", container)
    return names


# -- 1. the real dockerd ----------------------------------------------------------------------------
def test_docker_push_pull_roundtrip(daemon: DockerDaemon, registry: RegistryProcess,
                                    client: RegistryClient) -> None:
    big = "head -c 8388608 /dev/urandom > /data/big && md5sum /data/big > /data/big.md5"
    names = _build(daemon, f"acc-{registry.kind}", ["echo one > /one", f"mkdir /data && echo two > /data/two && {big}"])
    repo, copy = f"{registry.host_port}/acc/multi", f"{registry.host_port}/acc/copy"
    try:
        built = _inspect(daemon, names[-1])
        assert len(built["RootFS"]["Layers"]) == 3
        daemon.docker_ok("tag", names[-1], f"{repo}:v1")
        pushed = daemon.docker_ok("push", f"{repo}:v1")
        found = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)", pushed)
        assert found, pushed
        digest = found.group(1)
        got = client.request("GET", "/v2/acc/multi/manifests/v1", headers={"Accept": SCHEMA2})
        assert got.status == 200 and got.headers["Docker-Content-Digest"] == digest == sha256(got.body)
        assert got.json()["config"]["digest"] == built["Id"] and len(got.json()["layers"]) == 3
        daemon.docker_ok("tag", names[-1], f"{copy}:v1")  # a second repository: docker mounts, uploads nothing
        assert daemon.docker_ok("push", f"{copy}:v1").count("Mounted from acc/multi") == 3
        daemon.docker_ok("rmi", f"{repo}:v1", f"{copy}:v1", *reversed(names))
        for ref in (f"{repo}:v1", f"{repo}@{digest}"):
            assert daemon.docker("image", "inspect", built["Id"]).rc != 0, f"image still present before {ref}"
            assert daemon.docker_ok("pull", ref).count("Pull complete") == 3, f"not all 3 layers pulled for {ref}"
            pulled = _inspect(daemon, ref)
            assert pulled["Id"] == built["Id"]
            assert pulled["RepoDigests"] == [f"{repo}@{digest}"]
            assert pulled["RootFS"]["Layers"] == built["RootFS"]["Layers"]
            out = daemon.docker_ok("run", "--rm", "--network", "none", ref, "sh", "-c",
                      "cat /one /data/two && md5sum -c /data/big.md5")
            assert out == "one\ntwo\n/data/big: OK\n"
            daemon.docker_ok("rmi", ref)
    finally:
        daemon.docker("rmi", "-f", f"{repo}:v1", f"{copy}:v1", *names)


# -- 2. skopeo ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def archive(daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A docker-archive (docker save) of a 2-layer image."""
    names = _build(daemon, "sk-src", ["echo skopeo > /sk"])
    path = str(tmp_path_factory.mktemp("skopeo") / "image.tar")
    try:
        daemon.docker_ok("save", "-o", path, names[-1])
    finally:
        daemon.docker("rmi", "-f", *reversed(names))
    return path


def _skopeo(tmp: str, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp}
    r = subprocess.run(["skopeo", "--insecure-policy", *args], check=False, capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, f"skopeo {' '.join(args)}: rc={r.returncode}\n{r.stderr}"
    return r.stdout


def test_skopeo_copy_inspect_delete(registry: RegistryProcess, client: RegistryClient, archive: str,
                                    tmp_path: Any) -> None:
    tmp, img = str(tmp_path), f"docker://{registry.host_port}/sk/img"
    _skopeo(tmp, "copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"{img}:1")
    _skopeo(tmp, "copy", "--dest-tls-verify=false", "--format", "oci", f"docker-archive:{archive}", f"{img}:oci")
    info = {t: json.loads(_skopeo(tmp, "inspect", "--tls-verify=false", f"{img}:{t}")) for t in ("1", "oci")}
    for tag, accept in (("1", SCHEMA2), ("oci", "application/vnd.oci.image.manifest.v1+json")):
        got = client.request("GET", f"/v2/sk/img/manifests/{tag}", headers={"Accept": accept})
        assert got.status == 200 and got.headers["Content-Type"] == accept
        assert info[tag]["Digest"] == sha256(got.body) == got.headers["Docker-Content-Digest"]
        assert info[tag]["Layers"] == [layer["digest"] for layer in got.json()["layers"]]
        assert len(info[tag]["Layers"]) == 2
    copy = f"docker://{registry.host_port}/sk/copy:oci"  # registry to registry, same bytes
    _skopeo(tmp, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"{img}:oci", copy)
    assert json.loads(_skopeo(tmp, "inspect", "--tls-verify=false", copy))["Digest"] == info["oci"]["Digest"]
    _skopeo(tmp, "copy", "--src-tls-verify=false", f"{img}:oci", f"oci:{tmp}/layout:back")
    with open(f"{tmp}/layout/index.json") as f:
        assert [m["digest"] for m in json.load(f)["manifests"]] == [info["oci"]["Digest"]]
    _skopeo(tmp, "copy", "--src-tls-verify=false", f"{img}:1", f"dir:{tmp}/dir")
    with open(f"{tmp}/dir/manifest.json", "rb") as fb:
        assert sha256(fb.read()) == info["1"]["Digest"]
    tags = json.loads(_skopeo(tmp, "list-tags", "--tls-verify=false", img))
    assert sorted(tags["Tags"]) == ["1", "oci"]
    _skopeo(tmp, "delete", "--tls-verify=false", f"{img}:1")
    for ref in ("1", info["1"]["Digest"]):
        gone = client.request("GET", f"/v2/sk/img/manifests/{ref}", headers={"Accept": SCHEMA2})
        assert (gone.status, gone.error_codes()) == (404, ["MANIFEST_UNKNOWN"]), ref
    assert json.loads(_skopeo(tmp, "list-tags", "--tls-verify=false", img))["Tags"] == ["oci"]
