"""Embedded DNS forwarding to upstream servers, and many containers started at once on one network.

The upstream is a stub DNS server (dnspython) in the engine's host namespace, on the host's veth
address, given to the container with --dns: names the engine does not own are forwarded to it.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.acceptance.network.conftest import NetEngine

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

STUB = r"""
import socket, sys
import dns.message, dns.rrset
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(4096)
    q = dns.message.from_wire(data)
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text()
    if name == "upstream.test." and q.question[0].rdtype == 1:
        r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "10.9.9.9"))
    elif not name.startswith("upstream.test"):
        r.set_rcode(3)
    sock.sendto(r.to_wire(), peer)
"""


@pytest.fixture
def upstream(net_engine: NetEngine) -> Iterator[str]:
    """A stub DNS server on the engine host's veth address (port 53); yields that address."""
    eng = net_engine
    proc = subprocess.Popen(eng.ns.argv(sys.executable, "-c", STUB, eng.ns.address), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield eng.ns.address
    finally:
        proc.kill()
        proc.wait()


def test_other_names_are_forwarded_to_the_containers_dns(net_engine: NetEngine, upstream: str) -> None:
    eng = net_engine
    net, internal = eng.new_network(), eng.new_network()
    eng.ok("network", "create", net)
    out = eng.ok("run", "--rm", "--network", net, "--dns", upstream, "busybox",
                 "sh", "-c", "cat /etc/resolv.conf; nslookup -type=a upstream.test")
    assert "nameserver 127.0.0.11" in out and "10.9.9.9" in out, out
    r = eng.docker("run", "--rm", "--network", net, "--dns", upstream, "busybox", "nslookup", "-type=a", "nosuch.test")
    assert r.rc != 0 and "10.9.9.9" not in r.stdout, r
    eng.ok("network", "create", "--internal", internal)
    r = eng.docker("run", "--rm", "--network", internal, "--dns", upstream, "busybox",
                   "nslookup", "-type=a", "upstream.test")
    if eng.kind == "dockerd":
        assert "10.9.9.9" in r.stdout, r  # 20.10 forwards even from an internal network
    else:  # a deliberate difference (docs/networking.md), as later Docker releases do: no forwarding
        assert r.rc != 0 and "10.9.9.9" not in r.stdout, r


def test_parallel_runs_get_distinct_addresses_and_ports(net_engine: NetEngine) -> None:
    eng = net_engine
    net = eng.new_network()
    eng.ok("network", "create", net)
    names = [eng.new_name() for _ in range(12)]

    def start(name: str) -> str:
        return eng.ok("run", "-d", "--name", name, "--network", net, "-p", "80", "busybox", "sh", "-c",
                      f"mkdir /w; echo {name} > /w/f; exec httpd -f -p 80 -h /w")

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(start, names))
    docs = json.loads(eng.ok("inspect", *names))
    ips = [d["NetworkSettings"]["Networks"][net]["IPAddress"] for d in docs]
    ports = [next(b["HostPort"] for b in d["NetworkSettings"]["Ports"]["80/tcp"] if b["HostIp"] == "0.0.0.0")
             for d in docs]
    assert len(set(ips)) == len(ips) == 12 and len(set(ports)) == 12, (ips, ports)
    for name, port in zip(names, ports):
        assert eng.wait_http(f"http://127.0.0.1:{port}/f", expect=name).strip() == name
    first = names[0]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # and every one of them by name from inside the network
        r = eng.docker("exec", first, "sh", "-c",
                       " && ".join(f"timeout 3 wget -qO- http://{n}/f" for n in names[1:]))
        if r.rc == 0:
            break
        time.sleep(0.2)
    assert r.rc == 0 and r.stdout.split() == names[1:], r


def test_a_container_can_serve_port_53_itself(net_engine: NetEngine) -> None:
    """The embedded server is reached through 127.0.0.11:53 but listens elsewhere: port 53 stays free."""
    eng = net_engine
    net = eng.new_network()
    eng.ok("network", "create", net)
    peer = eng.run_d("--network", net, "busybox", "sleep", "300")
    out = eng.ok("run", "--rm", "--network", net, "busybox", "sh", "-c",
                 f"mkdir /w && echo dns-port > /w/f && httpd -p 53 -h /w && wget -qO- http://127.0.0.1:53/f "
                 f"&& nslookup -type=a {peer} 127.0.0.11")
    peer_ip = eng.inspect(peer, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    assert "dns-port" in out and f"Address: {peer_ip}" in out, out
