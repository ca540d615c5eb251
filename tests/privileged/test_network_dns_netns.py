"""The embedded DNS server at 127.0.0.11:53 inside throw-away network namespaces (root only).

Each namespace plays a container: the server's sockets are made in it, queries come from sockets
made in it, and forwarded queries leave from this (the engine's) namespace to a fake upstream on
127.0.0.1 here, which a container could not reach by itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

import dns.message
import dns.rcode
import pytest

from dockyard.errors import Unavailable
from dockyard.kernel import netns
from dockyard.network.dns import EmbeddedDNS
from tests.unit.test_network_dns import Upstream

pytestmark = [pytest.mark.privileged,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


class Resolver:
    """Two containers, each on its own network, each seeing only its neighbour."""

    def __init__(self, upstream: str) -> None:
        self.views = {"a": {"web": ["10.7.0.2"]}, "b": {"db": ["10.8.0.2"]}}
        self.upstream = upstream

    def lookup(self, sandbox: str, name: str) -> list[str] | None:
        return self.views[sandbox].get(name)

    def reverse(self, sandbox: str, ip: str) -> str | None:
        return None

    def upstreams(self, sandbox: str) -> list[str]:
        return [self.upstream] if sandbox == "a" else []


def lo_up(path: str) -> None:
    def up() -> None:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    netns.run_in(path, up)


@pytest.fixture
def namespaces() -> Iterator[dict[str, str]]:
    d = tempfile.mkdtemp(prefix="dyk-dns-")
    paths = {name: os.path.join(d, name) for name in ("a", "b")}
    try:
        for path in paths.values():
            netns.create(path)
        yield paths
    finally:
        for path in paths.values():
            netns.remove(path)
        shutil.rmtree(d, ignore_errors=True)


async def ask_udp(path: str, name: str, rdtype: str = "A") -> dns.message.Message:
    loop = asyncio.get_running_loop()
    sock = netns.socket_in(path, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(("127.0.0.11", 53))
        q = dns.message.make_query(name, rdtype)
        await loop.sock_sendall(sock, q.to_wire())
        async with asyncio.timeout(5):
            r = dns.message.from_wire(await loop.sock_recv(sock, 65535))
        assert r.id == q.id
        return r
    finally:
        sock.close()


async def ask_tcp(path: str, name: str) -> dns.message.Message:
    sock = netns.socket_in(path, socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.11", 53))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        wire = dns.message.make_query(name, "A").to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(await reader.readexactly(2), "big")
        return dns.message.from_wire(await reader.readexactly(size))
    finally:
        writer.close()


def test_served_inside_each_namespace_and_forwarded_from_ours(namespaces):
    async def body() -> None:
        up = Upstream()
        server = EmbeddedDNS(Resolver(await up.start()))
        try:
            with pytest.raises(Unavailable):  # lo down: replies would leave from 127.0.0.1
                await server.add("a", namespaces["a"])
            assert server.sandboxes() == []
            for path in namespaces.values():
                lo_up(path)
            await server.add("a", namespaces["a"])
            await server.add("b", namespaces["b"])
            await server.add("a", namespaces["a"])
            assert server.sandboxes() == ["a", "b"]
            r = await ask_udp(namespaces["a"], "WEB")
            assert r.answer[0].ttl == 600 and r.answer[0][0].address == "10.7.0.2"
            assert (await ask_tcp(namespaces["a"], "web")).answer[0][0].address == "10.7.0.2"
            r = await ask_udp(namespaces["b"], "db")
            assert r.answer[0][0].address == "10.8.0.2"
            r = await ask_udp(namespaces["a"], "example.org")  # forwarded to 127.0.0.1 here
            assert r.answer[0][0].address == "192.0.2.1" and up.udp_queries == 1
            r = await ask_udp(namespaces["b"], "web")  # not b's neighbour, no upstreams
            assert r.rcode() == dns.rcode.SERVFAIL
        finally:
            await server.close()
            up.stop()
    asyncio.run(asyncio.wait_for(body(), 60))


def test_remove_frees_the_port_in_the_namespace(namespaces):
    async def body() -> None:
        path = namespaces["a"]
        lo_up(path)
        server = EmbeddedDNS(Resolver("127.0.0.1:1"))
        await server.add("a", path)
        await server.remove("a")
        assert server.sandboxes() == []
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with netns.socket_in(path, socket.AF_INET, kind) as s:
                s.bind(("127.0.0.11", 53))
        await server.add("a", path)
        r = await ask_udp(path, "web")
        assert r.answer[0][0].address == "10.7.0.2"
        await server.close()
    asyncio.run(asyncio.wait_for(body(), 60))
