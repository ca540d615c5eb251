"""dockyard-registry as a pull-through cache of distribution 2.8, driven by the real dockerd.

dockerd pushes an image to the upstream (distribution), then pulls it THROUGH the proxy
(``127.0.0.1:<proxyport>/<repo>``) and gets the same manifest digest and image ID; with the
upstream stopped the proxy still serves it, also as dockerd's ``--registry-mirror`` for docker.io;
dockerd pushes another image to a repository of the proxy that holds nothing cached and pulls it
back; a push to the cached repository is refused with a message naming the upstream. The proxy is
`dockyard-registry serve` with a ``proxy`` section.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon
from tests.support.registries import RegistryProcess, RegistryStartError

pytestmark = [pytest.mark.interop, pytest.mark.privileged]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DockerDaemon, RegistryProcess, RegistryProcess]]:
    base = tmp_path_factory.mktemp("registry-proxy")
    upstream = RegistryProcess("distribution", str(base / "upstream"))
    proxy_root = base / "proxy"
    proxy_root.mkdir()
    proxy: RegistryProcess | None = None
    daemon: DockerDaemon | None = None
    try:
        try:
            upstream.start()
        except RegistryStartError as e:
            pytest.fail(str(e), pytrace=False)
        # the real `dockyard-registry serve` with a proxy section
        proxy = RegistryProcess("dockyard", str(proxy_root), extra_config=f"proxy:\n  remoteurl: {upstream.url}\n")
        proxy.start()
        hostclean.sweep_stale()
        daemon = DockerDaemon(log_dir=str(tmp_path_factory.mktemp("registry-proxy-dockerd")),
                              extra_args=("--registry-mirror", f"http://{proxy.host_port}"))
        daemon.start()
        yield daemon, upstream, proxy
    finally:
        if daemon is not None:
            daemon.stop()
        if proxy is not None:
            proxy.stop()
        upstream.stop()


def _ok(d: DockerDaemon, *args: str, where: object = None) -> str:
    r = d.docker(*args, timeout=120)
    assert r.rc == 0, f"docker {' '.join(args)}: {r}\n{where.log_tail() if where is not None else ''}"  # type: ignore[attr-defined]
    return r.stdout


def _pushed_digest(out: str) -> str:
    return out.strip().splitlines()[-1].split("digest: ")[1].split()[0]


def _image_id(d: DockerDaemon, ref: str) -> str:
    return _ok(d, "image", "inspect", "-f", "{{.Id}}", ref).strip()


def _small_image(d: DockerDaemon, tag: str) -> str:
    """`docker import` of a one-file rootfs: an image with one layer no other image shares."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"pushed to the proxy as {tag}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    r = d.docker("import", "-", tag, input=buf.getvalue(), timeout=60)
    assert r.rc == 0, r
    return r.stdout.strip()


def test_docker_pulls_through_the_proxy_and_pushes_next_to_it(
        setup: tuple[DockerDaemon, RegistryProcess, RegistryProcess]) -> None:
    d, upstream, proxy = setup
    image_id = d.load_busybox("busybox:latest")
    at_upstream = f"{upstream.host_port}/library/busybox:1"
    through = f"{proxy.host_port}/library/busybox:1"
    _ok(d, "tag", "busybox:latest", at_upstream)
    digest = _pushed_digest(_ok(d, "push", at_upstream, where=upstream))
    _ok(d, "rmi", at_upstream, "busybox:latest")  # nothing of the image is left in dockerd

    out = _ok(d, "pull", through, where=proxy)
    assert f"Digest: {digest}" in out
    assert _image_id(d, through) == image_id
    assert _ok(d, "run", "--rm", "--network", "none", through, "echo", "pulled through").strip() == "pulled through"

    # the upstream is gone: the cached image is still served, by tag and by digest
    upstream.stop()
    _ok(d, "rmi", through)
    out = _ok(d, "pull", through, where=proxy)
    assert f"Digest: {digest}" in out and _image_id(d, through) == image_id
    _ok(d, "pull", f"{proxy.host_port}/library/busybox@{digest}", where=proxy)
    # as dockerd's --registry-mirror: docker.io/library/busybox:1 comes from the proxy's cache
    _ok(d, "rmi", through)  # the image goes (its digest reference with it)
    out = _ok(d, "pull", "busybox:1", where=proxy)
    assert f"Digest: {digest}" in out and _image_id(d, "busybox:1") == image_id

    # another repository of the proxy, nothing cached in it: dockerd's push is accepted, then pulled back
    local = f"{proxy.host_port}/team/app:1"
    local_id = _small_image(d, local)
    local_digest = _pushed_digest(_ok(d, "push", local, where=proxy))
    _ok(d, "rmi", local)
    out = _ok(d, "pull", local, where=proxy)
    assert f"Digest: {local_digest}" in out and _image_id(d, local) == local_id

    # a push to the cached repository is refused, with the reason
    refused = f"{proxy.host_port}/library/busybox:mine"
    _small_image(d, refused)
    r = d.docker("push", refused, timeout=120)
    assert r.rc != 0, f"push to a cached repository succeeded: {r}"
    assert "unsupported: repository library/busybox is a pull-through cache of " + upstream.url in r.stderr, r
