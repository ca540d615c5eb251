"""`docker push` / `docker login` / /distribution through dockyardd, checked with the real dockerd.

Module setup: distribution 2.8 and dockyard-registry on loopback (plus, for login, distribution
with htpasswd and dockyard-registry with its token issuer), the real dockerd and dockyardd, both
``--insecure-registry`` for them. dockyardd pushes a locally built image (busybox + a committed
layer); the real dockerd pulls it back and must see the same image ID and manifest digest.
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
from tests.support.dockyardd import DockyardDaemon
from tests.support.registries import KINDS, RegistryProcess, insecure_args, start_all
from tests.support.registry_auth import PASSWORD, USER, AuthRegistry, write_htpasswd

pytestmark = [pytest.mark.privileged, pytest.mark.interop]
Engine = DockerDaemon | DockyardDaemon


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RegistryProcess | str]]:
    yield from start_all(lambda kind: str(tmp_path_factory.mktemp(f"push-registry-{kind}")))


@pytest.fixture(scope="module")
def auth_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AuthRegistry]]:
    base = str(tmp_path_factory.mktemp("push-auth"))
    users = os.path.join(base, "htpasswd")
    write_htpasswd(users)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=issuer", "-keyout", "token.pem", "-out", "token.crt"],
                   cwd=base, check=True, capture_output=True, timeout=60)
    q = json.dumps
    basic = f"auth:\n  htpasswd:\n    realm: {q('Dockyard Test')}\n    path: {q(users)}\n"
    token = ("auth:\n  token:\n    realm: \"http://127.0.0.1:$PORT/auth/token\"\n    service: test-registry\n"
             f"    issuer: dockyard-test\n    builtin:\n      key: {q(os.path.join(base, 'token.pem'))}\n"
             f"      certificate: {q(os.path.join(base, 'token.crt'))}\n      htpasswd: {q(users)}\n"
             "      expiration: 300\n")
    started: dict[str, AuthRegistry] = {}
    try:
        for label, kind, extra in (("basic", "distribution", basic), ("token", "dockyard", token)):
            reg = AuthRegistry(kind, os.path.join(base, label), extra)
            reg.start()
            started[label] = reg
        yield started
    finally:
        for reg in started.values():
            reg.stop()


@pytest.fixture(scope="module")
def dockerd(servers: dict[str, Any], auth_servers: dict[str, Any],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    hostclean.sweep_stale()
    with DockerDaemon(log_dir=str(tmp_path_factory.mktemp("push-dockerd-logs")),
                      extra_args=insecure_args(servers, auth_servers)).running() as d:
        yield d


@pytest.fixture(scope="module")
def dockyardd(servers: dict[str, Any], auth_servers: dict[str, Any],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardDaemon]:
    with DockyardDaemon(log_dir=str(tmp_path_factory.mktemp("push-dockyardd-logs")),
                        extra_args=insecure_args(servers, auth_servers)).running() as d:
        d.load_busybox("push-base:latest")
        d.docker_ok("run", "--name", "push-c1", "--network", "none", "push-base:latest", "sh", "-c",
                    "mkdir /data && echo pushed > /data/msg && head -c 300000 /dev/urandom > /data/blob")
        d.docker_ok("commit", "push-c1", "push-built:latest")
        d.docker_ok("rm", "push-c1")
        yield d


@pytest.fixture(params=KINDS)
def registry(request: pytest.FixtureRequest, servers: dict[str, RegistryProcess | str]) -> RegistryProcess:
    reg = servers[request.param]
    if isinstance(reg, str):
        pytest.fail(reg, pytrace=False)
    return reg



def _inspect(d: Engine, ref: str) -> dict[str, Any]:
    return json.loads(d.docker_ok("image", "inspect", ref))[0]


def _digest(out: str, tag: str) -> str:
    found = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: \d+$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def _statuses(out: str) -> list[str]:
    return sorted(line for line in out.splitlines() if re.match(r"^[0-9a-f]{12}: ", line))


def _in_order(out: str) -> list[str]:
    """The lines whose order does not depend on timing: the header, "Preparing" (top layer first), the digest."""
    return [line for line in out.splitlines() if not re.match(r"^[0-9a-f]{12}: ", line) or
            line.endswith(": Preparing")]


def test_push_local_image_then_dockerd_pulls_it(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                                registry: RegistryProcess) -> None:
    ref = f"{registry.host_port}/acc/push:v1"
    dockyardd.docker_ok("tag", "push-built:latest", ref)
    image_id = _inspect(dockyardd, ref)["Id"]
    diff_ids = _inspect(dockyardd, ref)["RootFS"]["Layers"]
    out = dockyardd.docker_ok("push", ref)
    digest = _digest(out, "v1")
    assert out.splitlines()[0] == f"The push refers to repository [{registry.host_port}/acc/push]"
    ids = [d.removeprefix("sha256:")[:12] for d in diff_ids]
    assert _statuses(out) == sorted([f"{i}: Preparing" for i in ids] + [f"{i}: Pushed" for i in ids])
    assert f"{registry.host_port}/acc/push@{digest}" in _inspect(dockyardd, ref)["RepoDigests"]
    again = dockyardd.docker_ok("push", ref)
    assert _digest(again, "v1") == digest
    ours = _statuses(again)
    assert ours == sorted([f"{i}: Preparing" for i in ids] + [f"{i}: Layer already exists" for i in ids])
    # the real dockerd pulls it: same image, same digest; its own push of it is byte-identical
    out = dockerd.docker_ok("pull", ref)
    assert f"Digest: {digest}" in out
    theirs = _inspect(dockerd, ref)
    assert theirs["Id"] == image_id and theirs["RepoDigests"] == [f"{registry.host_port}/acc/push@{digest}"]
    out = dockerd.docker_ok("push", ref)
    assert _digest(out, "v1") == digest and _statuses(out) == ours
    assert _in_order(out) == _in_order(again)
    assert dockerd.docker_ok("run", "--rm", "--network", "none", ref, "cat", "/data/msg") == "pushed\n"
    # a second repository of the same registry: mounted, not uploaded (dockerd does the same)
    other = {dockerd: f"{registry.host_port}/acc/copy-theirs:v2", dockyardd: f"{registry.host_port}/acc/copy:v2"}
    for d in (dockerd, dockyardd):
        d.docker_ok("tag", ref, other[d])
    ours_out, theirs_out = dockyardd.docker_ok("push", other[dockyardd]), dockerd.docker_ok("push", other[dockerd])
    assert _statuses(ours_out) == _statuses(theirs_out) == sorted(
        [f"{i}: Preparing" for i in ids] + [f"{i}: Mounted from acc/push" for i in ids])
    assert _digest(ours_out, "v2") == _digest(theirs_out, "v2") == digest
    for d in (dockerd, dockyardd):
        d.docker_ok("rmi", ref, other[d])


def test_push_of_pulled_image_keeps_its_digest(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                               registry: RegistryProcess) -> None:
    src = f"{registry.host_port}/acc/src:v1"
    dockerd.load_busybox("push-src:latest")
    dockerd.docker_ok("tag", "push-src:latest", src)
    want = _digest(dockerd.docker_ok("push", src), "v1")
    dockyardd.docker_ok("pull", src)
    copy = f"{registry.host_port}/acc/pulledcopy:v1"
    dockyardd.docker_ok("tag", src, copy)
    out = dockyardd.docker_ok("push", copy)
    assert _digest(out, "v1") == want
    assert ": Mounted from acc/src" in out
    dockyardd.docker_ok("rmi", src, copy)
    dockerd.docker_ok("rmi", src, "push-src:latest")


def test_push_errors_like_dockerd(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                  registry: RegistryProcess) -> None:
    ref = f"{registry.host_port}/acc/none:v1"
    theirs, ours = dockerd.docker("push", ref), dockyardd.docker("push", ref)
    assert (ours.rc, ours.stdout, ours.stderr) == (theirs.rc, theirs.stdout, theirs.stderr)
    assert theirs.stderr.strip().endswith(f"An image does not exist locally with the tag: {registry.host_port}/acc/none")


@pytest.mark.parametrize("label", ["basic", "token"])
def test_login_and_push_like_dockerd(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                     auth_servers: dict[str, AuthRegistry], label: str) -> None:
    reg = auth_servers[label]
    seen = []
    for d in (dockerd, dockyardd):
        wrong = d.docker("login", "-u", USER, "--password-stdin", reg.host_port, input="wrong-password")
        image = f"{reg.host_port}/auth/{'theirs' if d is dockerd else 'ours'}:1"
        if d is dockerd:
            d.load_busybox("push-auth:latest")
            d.docker_ok("tag", "push-auth:latest", image)
        else:
            d.docker_ok("tag", "push-built:latest", image)
        anonymous = d.docker("push", image, timeout=120)
        right = d.docker_ok("login", "-u", USER, "--password-stdin", reg.host_port, input=PASSWORD)
        pushed = d.docker_ok("push", image)
        seen.append((wrong.rc, wrong.stderr, anonymous.rc, anonymous.stderr.strip().splitlines()[-1:],
                     "Login Succeeded" in right, ": Pushed" in pushed))
        d.docker_ok("logout", reg.host_port)
        d.docker_ok("rmi", image)
    assert seen[0][0] == 1 and seen[0][2] == 1
    assert seen[1] == seen[0]


def test_dockerpy_push_stream_and_registry_data(dockyardd: DockyardDaemon, registry: RegistryProcess) -> None:
    docker = pytest.importorskip("docker")
    ref = f"{registry.host_port}/acc/dockerpy"
    dockyardd.docker_ok("tag", "push-built:latest", f"{ref}:py")
    client = docker.DockerClient(base_url=dockyardd.host, version="1.41")
    try:
        lines = list(client.images.push(ref, tag="py", stream=True, decode=True))
        assert lines[0] == {"status": f"The push refers to repository [{ref}]"}
        aux = [x["aux"] for x in lines if "aux" in x]
        assert len(aux) == 1 and aux[0]["Tag"] == "py"
        assert {"status": f"py: digest: {aux[0]['Digest']} size: {aux[0]['Size']}"} in lines
        assert not [x for x in lines if "error" in x]
        data = client.images.get_registry_data(f"{ref}:py")
        assert data.id == aux[0]["Digest"]
        assert data.attrs["Descriptor"] == {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                            "digest": aux[0]["Digest"], "size": aux[0]["Size"]}
        assert data.attrs["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    finally:
        client.close()
        dockyardd.docker_ok("rmi", f"{ref}:py")


def test_api_edges_like_dockerd(dockerd: DockerDaemon, dockyardd: DockyardDaemon, registry: RegistryProcess,
                                auth_servers: dict[str, AuthRegistry]) -> None:
    """Push without X-Registry-Auth, /distribution of an unknown tag, /auth with a wrong password."""
    from tests.acceptance.test_api_http import request

    cases: list[tuple[str, str, bytes | None]] = [
             ("POST", "/v1.41/images/busybox/push?tag=latest", None),
             ("GET", f"/v1.41/distribution/{registry.host_port}/acc/none:v1/json", None)]
    for label in ("basic", "token"):
        wrong = {"username": USER, "password": "nope", "serveraddress": auth_servers[label].host_port}
        cases.append(("POST", "/v1.41/auth", json.dumps(wrong).encode()))
    for method, path, body in cases:
        theirs = request(dockerd.host, method, path, body)
        ours = request(dockyardd.host, method, path, body)
        assert (ours[0], json.loads(ours[2])) == (theirs[0], json.loads(theirs[2])), (method, path)


def test_pull_platform_and_all_tags(dockerd: DockerDaemon, dockyardd: DockyardDaemon,
                                    registry: RegistryProcess) -> None:
    base = f"{registry.host_port}/acc/multi"
    dockyardd.docker_ok("tag", "push-built:latest", f"{base}:a")
    dockyardd.docker_ok("tag", "push-built:latest", f"{base}:b")
    dockyardd.docker_ok("push", "--all-tags", base)  # the CLI sends no tag: every tag
    dockyardd.docker_ok("manifest", "create", "--insecure", f"{base}:list", f"{base}:a")
    dockyardd.docker_ok("manifest", "push", "--insecure", f"{base}:list")
    dockyardd.docker_ok("rmi", f"{base}:a", f"{base}:b")
    theirs, ours = (d.docker("pull", "--platform", "linux/arm64", f"{base}:list") for d in (dockerd, dockyardd))
    assert theirs.stderr == "no matching manifest for linux/arm64 in the manifest list entries\n", theirs
    assert (ours.rc, ours.stdout, ours.stderr) == (theirs.rc, theirs.stdout, theirs.stderr)
    for d in (dockerd, dockyardd):
        out = d.docker_ok("pull", "--platform", "linux/amd64", f"{base}:list")
        assert out.endswith(f"Status: Downloaded newer image for {base}:list\n{base}:list\n"), out
        out = d.docker_ok("pull", "-a", base)
        assert out.endswith(f"Status: Downloaded newer image for {base}\n{base}\n"), out
        tags = d.docker_ok("images", "--format", "{{.Tag}}", base).split()
        assert sorted(tags) == ["a", "b", "list"], tags
        d.docker_ok("rmi", f"{base}:a", f"{base}:b", f"{base}:list")
