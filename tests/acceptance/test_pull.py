"""`docker pull` through dockyardd from real registries, compared with the real dockerd's pull.

Module setup: distribution 2.8 and dockyard-registry on loopback (tests/support/registries.py), a
private dockerd that builds a 2-layer image (busybox + a committed layer) and pushes it to both
(schema2, gzip layers), plus skopeo copying the same image as an OCI manifest. dockyardd runs with
``--insecure-registry`` for both. Every case runs against each registry, distribution first.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon
from tests.support.dockyardd import DockyardDaemon
from tests.support.registries import KINDS, RegistryProcess, insecure_args, start_all

pytestmark = [pytest.mark.privileged, pytest.mark.interop]
REPO = "acc/pull"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RegistryProcess | str]]:
    yield from start_all(lambda kind: str(tmp_path_factory.mktemp(f"pull-registry-{kind}")))


@pytest.fixture(scope="module")
def dockerd(servers: dict[str, RegistryProcess | str], tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[DockerDaemon]:
    hostclean.sweep_stale()
    with DockerDaemon(log_dir=str(tmp_path_factory.mktemp("pull-dockerd-logs")),
                      extra_args=insecure_args(servers)).running() as d:
        yield d


@pytest.fixture(scope="module")
def dockyardd(servers: dict[str, RegistryProcess | str], tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[DockyardDaemon]:
    with DockyardDaemon(log_dir=str(tmp_path_factory.mktemp("pull-dockyardd-logs")),
                        extra_args=insecure_args(servers)).running() as d:
        yield d



def _inspect(d: DockerDaemon | DockyardDaemon, ref: str) -> dict[str, Any]:
    return json.loads(d.docker_ok("image", "inspect", ref))[0]


@pytest.fixture(scope="module")
def pushed(servers: dict[str, RegistryProcess | str], dockerd: DockerDaemon,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Per registry kind: the schema2 digest dockerd pushed, the OCI digest skopeo pushed, the image ID."""
    dockerd.load_busybox("pull-base:latest")
    dockerd.docker_ok("run", "--name", "pull-c1", "--network", "none", "pull-base:latest", "sh", "-c",
        "mkdir /data && echo pulled > /data/msg && head -c 3000000 /dev/urandom > /data/blob && "
        "md5sum /data/blob > /data/blob.md5")
    dockerd.docker_ok("commit", "pull-c1", "pull-built:latest")
    dockerd.docker_ok("rm", "pull-c1")
    image_id = _inspect(dockerd, "pull-built:latest")["Id"]
    archive = str(tmp_path_factory.mktemp("pull-archive") / "image.tar")
    dockerd.docker_ok("save", "-o", archive, "pull-built:latest")
    out: dict[str, dict[str, str]] = {}
    for kind, reg in servers.items():
        if not isinstance(reg, RegistryProcess):
            continue
        ref = f"{reg.host_port}/{REPO}:v1"
        dockerd.docker_ok("tag", "pull-built:latest", ref)
        found = re.search(r"v1: digest: (sha256:[0-9a-f]{64})", dockerd.docker_ok("push", ref))
        assert found
        dockerd.docker_ok("rmi", ref)
        out[kind] = {"schema2": found.group(1), "id": image_id, "oci": _skopeo_oci(reg, archive)}
    dockerd.docker_ok("rmi", "pull-built:latest", "pull-base:latest")
    return out


def _skopeo_oci(reg: RegistryProcess, archive: str) -> str:
    """Copy the archive as an OCI manifest to <reg>/acc/pull:oci; its digest ("" without skopeo)."""
    if shutil.which("skopeo") is None:
        return ""
    env = {"PATH": "/usr/bin:/bin", "HOME": reg.root, "TMPDIR": reg.root}
    dest = f"docker://{reg.host_port}/{REPO}:oci"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "--format", "oci",
                    f"docker-archive:{archive}", dest], check=True, capture_output=True, env=env, timeout=120)
    r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", dest], check=True, capture_output=True,
                       env=env, timeout=60)
    return str(json.loads(r.stdout)["Digest"])


@pytest.fixture(params=KINDS)
def registry(request: pytest.FixtureRequest, servers: dict[str, RegistryProcess | str]) -> RegistryProcess:
    reg = servers[request.param]
    if isinstance(reg, str):
        pytest.fail(reg, pytrace=False)
    return reg


def _wipe(d: DockerDaemon | DockyardDaemon) -> None:
    """Remove every image of the engine (this module's engines hold only what it pulled)."""
    ids = sorted(set(d.docker_ok("images", "-aq", "--no-trunc").split()))
    if ids:
        d.docker_ok("rmi", "-f", *ids)


def _both_pull(dockerd: DockerDaemon, dockyardd: DockyardDaemon, ref: str) -> tuple[dict[str, Any], ...]:
    """Pull ``ref`` on both engines, each from an empty image store; both outputs and inspections."""
    results = []
    for d in (dockerd, dockyardd):
        _wipe(d)
        out = d.docker_ok("pull", ref)
        results.append({"out": out, "inspect": _inspect(d, ref)})
    return tuple(results)


def _lines(out: str) -> list[str]:
    """The CLI's pull output as a sorted list, without "Verifying Checksum" (dockerd's progress
    coalescing drops it at random for small layers)."""
    return sorted(line for line in out.splitlines() if not line.endswith(": Verifying Checksum"))


def test_pull_by_tag_matches_dockerd(dockerd: DockerDaemon, dockyardd: DockyardDaemon, registry: RegistryProcess,
                                     pushed: dict[str, dict[str, str]]) -> None:
    want = pushed[registry.kind]
    ref = f"{registry.host_port}/{REPO}:v1"
    theirs, ours = _both_pull(dockerd, dockyardd, ref)
    for got in (theirs, ours):
        assert got["inspect"]["Id"] == want["id"]
        assert got["inspect"]["RepoDigests"] == [f"{registry.host_port}/{REPO}@{want['schema2']}"]
        assert got["inspect"]["RepoTags"] == [ref]
        assert got["out"].splitlines()[0] == theirs["out"].splitlines()[0], (got["out"], theirs["out"])
        assert _lines(got["out"]) == _lines(theirs["out"]), (got["out"], theirs["out"])
        assert got["out"].count(": Pull complete") == 2, got["out"]
        assert f"Digest: {want['schema2']}\nStatus: Downloaded newer image for {ref}\n{ref}\n" in got["out"]
    assert ours["inspect"]["RootFS"] == theirs["inspect"]["RootFS"]
    again = dockyardd.docker_ok("pull", ref)
    assert again == dockerd.docker_ok("pull", ref)
    assert again.endswith(f"Digest: {want['schema2']}\nStatus: Image is up to date for {ref}\n{ref}\n")
    out = dockyardd.docker_ok("run", "--rm", "--network", "none", ref, "sh", "-c", "cat /data/msg && md5sum -c /data/blob.md5")
    assert out == "pulled\n/data/blob: OK\n"
    images = dockyardd.docker_ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
    assert f"{registry.host_port}/{REPO} v1 {want['schema2']}" in images.splitlines()
    dockyardd.docker_ok("rmi", ref)


def test_pull_by_digest_and_run(dockerd: DockerDaemon, dockyardd: DockyardDaemon, registry: RegistryProcess,
                                pushed: dict[str, dict[str, str]]) -> None:
    want = pushed[registry.kind]
    ref = f"{registry.host_port}/{REPO}@{want['schema2']}"
    theirs, ours = _both_pull(dockerd, dockyardd, ref)
    for key in ("Id", "RepoDigests", "RepoTags"):
        assert ours["inspect"][key] == theirs["inspect"][key], key
    assert ours["inspect"]["Id"] == want["id"]
    out = dockyardd.docker_ok("run", "--rm", "--network", "none", ref, "cat", "/data/msg")
    assert out == "pulled\n"
    for d in (dockerd, dockyardd):
        d.docker_ok("rmi", ref)


def test_pull_oci_manifest(dockerd: DockerDaemon, dockyardd: DockyardDaemon, registry: RegistryProcess,
                           pushed: dict[str, dict[str, str]]) -> None:
    want = pushed[registry.kind]
    if not want["oci"]:
        pytest.skip("skopeo not installed")
    ref = f"{registry.host_port}/{REPO}:oci"
    theirs, ours = _both_pull(dockerd, dockyardd, ref)
    for key in ("Id", "RepoDigests", "RepoTags"):
        assert ours["inspect"][key] == theirs["inspect"][key], key
    assert ours["inspect"]["RepoDigests"] == [f"{registry.host_port}/{REPO}@{want['oci']}"]
    assert dockyardd.docker_ok("run", "--rm", "--network", "none", ref, "cat", "/data/msg") == "pulled\n"
    for d in (dockerd, dockyardd):
        d.docker_ok("rmi", ref)


def test_unknown_tag_is_dockers_error(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                      registry: RegistryProcess) -> None:
    ref = f"{registry.host_port}/{REPO}:nope"
    theirs, ours = dockerd.docker("pull", ref), dockyardd.docker("pull", ref)
    assert theirs.rc == ours.rc == 1
    assert ours.stderr == theirs.stderr == (f"Error response from daemon: manifest for {ref} not found: "
                                            "manifest unknown: manifest unknown\n")


def test_dockerpy_pull(dockyardd: DockyardDaemon, registry: RegistryProcess,
                       pushed: dict[str, dict[str, str]]) -> None:
    docker = pytest.importorskip("docker")
    _wipe(dockyardd)
    client = docker.DockerClient(base_url=dockyardd.host, version="1.41")
    try:
        image = client.images.pull(f"{registry.host_port}/{REPO}", tag="v1")
        assert image.id == pushed[registry.kind]["id"]
        assert image.tags == [f"{registry.host_port}/{REPO}:v1"]
        assert image.attrs["RepoDigests"] == [f"{registry.host_port}/{REPO}@{pushed[registry.kind]['schema2']}"]
        client.images.remove(f"{registry.host_port}/{REPO}:v1")
    finally:
        client.close()


def test_rmi_of_pulled_tag_matches_dockerd(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                           registry: RegistryProcess, pushed: dict[str, dict[str, str]]) -> None:
    ref = f"{registry.host_port}/{REPO}:v1"
    _both_pull(dockerd, dockyardd, ref)
    theirs, ours = (d.docker_ok("rmi", ref).splitlines() for d in (dockerd, dockyardd))
    assert [line.split(":")[0] for line in ours] == [line.split(":")[0] for line in theirs], (ours, theirs)
    assert dockyardd.docker_ok("images", "-q") == dockerd.docker_ok("images", "-q") == ""
