"""network.links and network.sysctl against the real kernel, inside throw-away namespaces.

A fresh namespace plays the host: every links call runs in it through netns.run_in (links acts
on the caller's namespace), and two more namespaces play containers plugged into its bridge.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from typing import Callable, Iterator, TypeVar

import pytest

from dockyard.errors import DockyardError
from dockyard.kernel import netns
from dockyard.network import links, sysctl

pytestmark = pytest.mark.privileged

T = TypeVar("T")
BRIDGE = "dyktest0"


class Lab:
    """A host namespace and any number of container namespaces, all removed at the end."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="dyk-links-")
        self.host = self.new("host")
        self.containers: list[str] = []

    def new(self, name: str) -> str:
        path = os.path.join(self.dir, name)
        netns.create(path)
        return path

    def on_host(self, fn: Callable[[], T]) -> T:
        return netns.run_in(self.host, fn)

    def close(self) -> None:
        for name in os.listdir(self.dir):
            netns.remove(os.path.join(self.dir, name))
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000


def link_info(path: str, ifname: str) -> tuple[str, int, list[str]]:
    """(MAC, flags, ipv4 addresses) of ifname inside the namespace at path."""
    def read(ipr) -> tuple[str, int, list[str]]:  # type: ignore[no-untyped-def]
        link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        addrs = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=socket.AF_INET, index=link["index"])]
        return link.get_attr("IFLA_ADDRESS"), link["flags"], addrs

    return links._in_netns(path, read)


def default_gateway(path: str) -> str | None:
    def read(ipr) -> str | None:  # type: ignore[no-untyped-def]
        routes = ipr.get_default_routes(family=socket.AF_INET, table=254)
        return routes[0].get_attr("RTA_GATEWAY") if routes else None

    return links._in_netns(path, read)


def test_bridge_is_idempotent_and_owns_exactly_its_addresses(lab: Lab) -> None:
    _, first = lab.on_host(lambda: timed(lambda: links.ensure_bridge(BRIDGE, ["10.99.0.1/24"])))
    _, again = lab.on_host(lambda: timed(lambda: links.ensure_bridge(BRIDGE, ["10.99.0.1/24"])))
    print(f"ensure_bridge: create {first:.2f} ms, again {again:.2f} ms")
    assert lab.on_host(lambda: links.list_links("dyk", kind="bridge")) == [BRIDGE]
    assert lab.on_host(lambda: links.link_exists(BRIDGE))
    mac, flags, addrs = link_info(lab.host, BRIDGE)
    assert addrs == ["10.99.0.1/24"] and flags & 1
    assert int(mac.split(":")[0], 16) & 2, "bridge MAC is fixed and locally administered"
    assert lab.on_host(lambda: sysctl.read(f"net/ipv4/conf/{BRIDGE}/route_localnet")) == "1"

    lab.on_host(lambda: links.ensure_bridge(BRIDGE, ["10.98.0.1/16", "10.97.0.1/24"], mtu=1400))
    _, _, addrs = link_info(lab.host, BRIDGE)
    assert sorted(addrs) == ["10.97.0.1/24", "10.98.0.1/16"]
    assert "10.98.0.0/16" in lab.on_host(links.host_routes)
    assert "10.98.0.0/16" not in lab.on_host(lambda: links.host_routes(exclude_prefixes=("dyk",)))

    lab.on_host(lambda: links.delete_link(BRIDGE))
    lab.on_host(lambda: links.delete_link(BRIDGE))
    assert not lab.on_host(lambda: links.link_exists(BRIDGE))


def test_two_containers_talk_over_the_bridge(lab: Lab) -> None:
    a, b = lab.new("a"), lab.new("b")
    lab.on_host(lambda: links.ensure_bridge(BRIDGE, ["10.99.0.1/24"]))
    for ns in (a, b):
        links.loopback_up(ns)
    _, ta = lab.on_host(lambda: timed(lambda: links.attach(a, BRIDGE, "vd0000000000a", "eth0", "02:42:0a:63:00:02", "10.99.0.2/24", "10.99.0.1")))
    _, tb = lab.on_host(lambda: timed(lambda: links.attach(b, BRIDGE, "vd0000000000b", "eth0", "02:42:0a:63:00:03", "10.99.0.3/24", "10.99.0.1")))
    print(f"attach: {ta:.2f} ms, {tb:.2f} ms")

    assert links.interface_names(a) == ["eth0", "lo"]
    mac, flags, addrs = link_info(a, "eth0")
    assert (mac, addrs) == ("02:42:0a:63:00:02", ["10.99.0.2/24"]) and flags & 1
    assert default_gateway(a) == "10.99.0.1"
    assert lab.on_host(lambda: links.list_links("vd", kind="veth")) == ["vd0000000000a", "vd0000000000b"]
    assert not lab.on_host(lambda: links.link_exists("eth0")), "no peer name is left on the host"

    server = netns.socket_in(b, socket.AF_INET, socket.SOCK_STREAM)
    client = netns.socket_in(a, socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(("10.99.0.3", 0))
        server.listen(1)
        client.settimeout(5)
        client.connect(("10.99.0.3", server.getsockname()[1]))
        peer, (src, _) = server.accept()
        client.sendall(b"ping")
        assert peer.recv(4) == b"ping" and src == "10.99.0.2"
        peer.close()
    finally:
        client.close()
        server.close()

    # a second network on the same container: eth1, default route kept
    lab.on_host(lambda: links.ensure_bridge("dyktest1", ["10.96.0.1/24"]))
    lab.on_host(lambda: links.attach(a, "dyktest1", "vd000000000a1", "eth1", "02:42:0a:60:00:02", "10.96.0.2/24", "10.96.0.1"))
    assert links.interface_names(a) == ["eth0", "eth1", "lo"]
    assert default_gateway(a) == "10.99.0.1"

    _, td = lab.on_host(lambda: timed(lambda: links.detach("vd0000000000a")))
    print(f"detach: {td:.2f} ms")
    lab.on_host(lambda: links.detach("vd0000000000a"))
    assert links.interface_names(a) == ["eth1", "lo"]
    assert lab.on_host(lambda: links.list_links("vd0")) == ["vd0000000000b", "vd000000000a1"]


def test_failed_attach_leaves_nothing(lab: Lab) -> None:
    a = lab.new("a")
    with pytest.raises(DockyardError, match="bridge nosuchbr not found"):
        lab.on_host(lambda: links.attach(a, "nosuchbr", "vd00000000bad", "eth0", "02:42:0a:63:00:09", "10.99.0.9/24", None))
    assert not lab.on_host(lambda: links.link_exists("vd00000000bad"))
    with pytest.raises(DockyardError, match="invalid MAC"):
        lab.on_host(lambda: links.attach(a, "nosuchbr", "vd00000000bad", "eth0", "02:42:0a", "10.99.0.9/24", None))

    # the peer name is taken inside the container: nothing may stay on the host either
    lab.on_host(lambda: links.ensure_bridge(BRIDGE, ["10.99.0.1/24"]))
    lab.on_host(lambda: links.attach(a, BRIDGE, "vd00000000ok0", "eth0", "02:42:0a:63:00:02", "10.99.0.2/24", None))
    with pytest.raises(DockyardError):
        lab.on_host(lambda: links.attach(a, BRIDGE, "vd00000000bad", "eth0", "02:42:0a:63:00:03", "10.99.0.3/24", None))
    assert lab.on_host(lambda: links.list_links("vd", kind="veth")) == ["vd00000000ok0"]

    # a gateway outside the subnet fails after the pair exists: it is rolled back
    with pytest.raises(DockyardError, match="failed to attach eth1"):
        lab.on_host(lambda: links.attach(a, BRIDGE, "vd00000000bad", "eth1", "02:42:0a:63:00:04", "10.99.0.4/24", "10.50.0.1"))
    assert lab.on_host(lambda: links.list_links("vd", kind="veth")) == ["vd00000000ok0"]
    assert links.interface_names(a) == ["eth0", "lo"]


def test_sysctl_read_write_in_a_namespace(lab: Lab) -> None:
    assert lab.on_host(lambda: sysctl.read("net/ipv4/ip_forward")) in ("0", "1")
    lab.on_host(sysctl.set_forwarding)
    assert lab.on_host(lambda: sysctl.read("/proc/sys/net/ipv4/ip_forward")) == "1"
    assert sysctl.read("net/ipv4/no_such_knob") is None
