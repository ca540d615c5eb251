"""The firewall table in a real kernel: published ports reachable from the host (loopback
included), from a container through the host (hairpin) and from a remote machine; bridges
isolated; outbound masquerade. Everything happens in throw-away network namespaces: one plays
the host, the others containers and a remote machine."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from dockyard.kernel import netns, nftables
from dockyard.network import firewall as fw
from dockyard.network import sysctl

pytestmark = pytest.mark.privileged

TABLE = "dockyard"
HOST_BR, NET_BR = "dyk0", "dyk1"
C1, C2 = "10.201.0.2", "10.202.0.2"
HOST_UPLINK, REMOTE = "198.51.100.1", "198.51.100.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Lab:
    """host, c1 (on dyk0), c2 (on dyk1) and remote netns, wired as the engine would."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.names = {k: f"dyk-fw-{k}-{tag}" for k in ("host", "c1", "c2", "remote")}
        for n in self.names.values():
            ip("netns", "add", n)
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []

    def path(self, key: str) -> str:
        return f"/var/run/netns/{self.names[key]}"

    def build(self) -> None:
        h = self.names["host"]
        for key in self.names:
            ip("-n", self.names[key], "link", "set", "lo", "up")
        for br, addr in ((HOST_BR, "10.201.0.1/24"), (NET_BR, "10.202.0.1/24")):
            ip("-n", h, "link", "add", br, "type", "bridge")
            ip("-n", h, "addr", "add", addr, "dev", br)
            ip("-n", h, "link", "set", br, "up")
        self._veth("c1", HOST_BR, C1 + "/24", "10.201.0.1")
        self._veth("c2", NET_BR, C2 + "/24", "10.202.0.1")
        self._veth("remote", None, REMOTE + "/24", HOST_UPLINK)
        ip("-n", h, "addr", "add", HOST_UPLINK + "/24", "dev", "vremote")
        ip("-n", h, "link", "set", "vremote", "up")

        def tune() -> None:
            sysctl.write("net/ipv4/ip_forward", "1")
            sysctl.write(f"net/ipv4/conf/{HOST_BR}/route_localnet", "1")
            sysctl.write(f"net/ipv4/conf/{NET_BR}/route_localnet", "1")
        netns.run_in(self.path("host"), tune)

    def _veth(self, key: str, bridge: str | None, addr: str, gw: str) -> None:
        h, c = self.names["host"], self.names[key]
        ip("-n", h, "link", "add", f"v{key}", "type", "veth", "peer", "name", "eth0", "netns", c)
        if bridge:
            ip("-n", h, "link", "set", f"v{key}", "master", bridge)
            # as the engine must: with br_netfilter, a container reaching its own published port
            # is DNAT'd in the bridge and sent back out the port it came in by
            ip("-n", h, "link", "set", f"v{key}", "type", "bridge_slave", "hairpin", "on")
            ip("-n", h, "link", "set", f"v{key}", "up")
        ip("-n", c, "addr", "add", addr, "dev", "eth0")
        ip("-n", c, "link", "set", "eth0", "up")
        ip("-n", c, "route", "add", "default", "via", gw)

    def echo(self, key: str, port: int) -> list[str]:
        """A TCP server in netns key answering each line with its peer's address; returns peers seen."""
        srv = netns.socket_in(self.path(key), socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(16)
        srv.settimeout(0.2)
        self.socks.append(srv)
        peers: list[str] = []

        def serve() -> None:
            while not self.stop.is_set():
                try:
                    conn, addr = srv.accept()
                except (socket.timeout, OSError):
                    continue
                with conn:
                    peers.append(addr[0])
                    conn.sendall(b"echo:" + conn.recv(100))
        threading.Thread(target=serve, daemon=True).start()
        return peers

    def talk(self, key: str, addr: str, port: int, timeout: float = 2.0) -> bytes | None:
        """Connect from netns key and send a line; the answer, or None when unreachable."""
        s = netns.socket_in(self.path(key), socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((addr, port))
            s.sendall(b"hi")
            return s.recv(100)
        except OSError:
            return None
        finally:
            s.close()

    def nft(self, fn):
        return netns.run_in(self.path("host"), fn)

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            s.close()
        for n in self.names.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.close()


BRIDGES = [fw.BridgeRule(HOST_BR, "10.201.0.0/24"), fw.BridgeRule(NET_BR, "10.202.0.0/24")]
PORTS = [
    fw.PortRule("tcp", "", 8080, C1, 80, HOST_BR),
    fw.PortRule("tcp", "127.0.0.1", 8081, C1, 80, HOST_BR),
]


def test_published_port_reachable_from_host_loopback_bridge_remote_and_hairpin(lab) -> None:
    peers = lab.echo("c1", 80)
    t0 = time.monotonic()
    lab.nft(lambda: fw.apply(BRIDGES, PORTS))
    print(f"apply: {(time.monotonic() - t0) * 1000:.1f} ms")
    assert lab.talk("host", "127.0.0.1", 8080) == b"echo:hi"
    assert lab.talk("host", "10.201.0.1", 8080) == b"echo:hi"
    assert lab.talk("host", HOST_UPLINK, 8080) == b"echo:hi"
    assert lab.talk("remote", HOST_UPLINK, 8080) == b"echo:hi"
    assert peers[-1] == REMOTE  # the client's address is kept for remote clients
    assert lab.talk("c1", "10.201.0.1", 8080) == b"echo:hi"  # hairpin
    assert peers[-1] == "10.201.0.1"  # masqueraded, so the reply goes back through the host
    assert lab.talk("c1", HOST_UPLINK, 8080) == b"echo:hi"
    # published ports are open to containers of other networks too
    assert lab.talk("c2", "10.202.0.1", 8080) == b"echo:hi"
    # bound to 127.0.0.1: loopback only
    assert lab.talk("host", "127.0.0.1", 8081) == b"echo:hi"
    assert lab.talk("remote", HOST_UPLINK, 8081, timeout=1) is None


def test_isolation_masquerade_and_no_unpublished_way_in(lab) -> None:
    lab.echo("c1", 80)
    out = lab.echo("remote", 7000)
    lab.nft(lambda: fw.apply(BRIDGES, PORTS))
    assert lab.talk("host", C1, 80) == b"echo:hi"  # the host reaches containers directly
    assert lab.talk("c2", C1, 80, timeout=1) is None  # another network: isolated
    assert lab.talk("remote", C1, 80, timeout=1) is None  # only published ports come in
    assert lab.talk("c1", REMOTE, 7000) == b"echo:hi"  # containers reach out, masqueraded
    assert out == [HOST_UPLINK]


def test_internal_bridge_forwards_nothing_out(lab) -> None:
    lab.echo("remote", 7000)
    lab.echo("c1", 80)
    internal = [fw.BridgeRule(HOST_BR, "10.201.0.0/24", internal=True), BRIDGES[1]]
    lab.nft(lambda: fw.apply(internal, []))
    assert lab.talk("c1", REMOTE, 7000, timeout=1) is None
    assert lab.talk("remote", C1, 80, timeout=1) is None
    lab.nft(lambda: fw.apply(BRIDGES, []))  # reconcile to non-internal: out again
    assert lab.talk("c1", REMOTE, 7000) == b"echo:hi"


def test_apply_is_idempotent_and_remove_leaves_nothing(lab) -> None:
    lab.echo("c1", 80)
    lab.nft(lambda: nftables.run("add table ip other\nadd chain ip other keep"))
    lab.nft(lambda: fw.apply(BRIDGES, PORTS))
    first = lab.nft(lambda: fw.listing(TABLE))
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        lab.nft(lambda: fw.apply(BRIDGES, PORTS))
        times.append((time.monotonic() - t0) * 1000)
    print("apply again: " + ", ".join(f"{t:.1f}" for t in times) + " ms")
    assert lab.nft(lambda: fw.listing(TABLE)) == first
    # an established connection survives a re-apply (the table is replaced, conntrack stays)
    assert lab.talk("host", "127.0.0.1", 8080) == b"echo:hi"
    lab.nft(lambda: fw.apply(BRIDGES, []))
    assert lab.talk("host", "127.0.0.1", 8080, timeout=1) is None
    lab.nft(lambda: fw.remove(TABLE))
    lab.nft(lambda: fw.remove(TABLE))
    tables = lab.nft(lambda: nftables.run("list tables"))
    assert "dockyard" not in tables and "table ip other" in tables


def test_a_refused_apply_keeps_the_previous_rules(lab, monkeypatch) -> None:
    lab.echo("c1", 80)
    lab.nft(lambda: fw.apply(BRIDGES, PORTS))
    before = lab.nft(lambda: fw.listing(TABLE))
    monkeypatch.setattr(fw, "render", lambda b, p, t="dockyard": "add table ip dockyard\n"
                        "delete table ip dockyard\ntable ip dockyard { chain c { bogus } }\n")
    with pytest.raises(nftables.NftError):
        lab.nft(lambda: fw.apply([], []))
    assert lab.nft(lambda: fw.listing(TABLE)) == before
    assert lab.talk("host", "127.0.0.1", 8080) == b"echo:hi"


def test_nothing_was_touched_in_the_init_namespace() -> None:
    assert "dockyard" not in nftables.run("list tables")
    assert os.path.exists("/proc/self/ns/net")


def test_udp_published_port(lab) -> None:
    srv = netns.socket_in(lab.path("c1"), socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", 53))
    srv.settimeout(0.2)
    lab.socks.append(srv)

    def serve() -> None:
        while not lab.stop.is_set():
            try:
                data, peer = srv.recvfrom(100)
            except (socket.timeout, OSError):
                continue
            srv.sendto(b"echo:" + data, peer)
    threading.Thread(target=serve, daemon=True).start()
    lab.nft(lambda: fw.apply(BRIDGES, [fw.PortRule("udp", "", 5353, C1, 53, HOST_BR)]))
    for key, addr in (("host", "127.0.0.1"), ("remote", HOST_UPLINK), ("c2", "10.202.0.1")):
        s = netns.socket_in(lab.path(key), socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        try:
            s.sendto(b"q", (addr, 5353))
            assert s.recvfrom(100)[0] == b"echo:q", key
        finally:
            s.close()
