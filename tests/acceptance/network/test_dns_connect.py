"""Embedded DNS on user networks (names, aliases, short ids), isolation, connect/disconnect, --link."""

from __future__ import annotations

import re

import pytest

from tests.acceptance.network.conftest import NetEngine, wget

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _net_ip(eng: NetEngine, container: str, network: str) -> str:
    return eng.inspect(container, f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}')


def _fetch(eng: NetEngine, network: str, url: str, *extra: str) -> str:
    """The body at url from a fresh container on network, retried until the server is up (15 s)."""
    return eng.wait_for(f"{url} from {network}",
                        lambda: (lambda r: r.stdout if r.rc == 0 else None)(eng.wget_from(network, url, *extra)))


def test_name_alias_and_short_id_resolve(net_engine: NetEngine) -> None:
    eng = net_engine
    n1 = eng.new_network()
    eng.ok("network", "create", n1)
    srv = eng.httpd("--network-alias", "web", body="served-by-srv", network=n1)
    short = eng.inspect(srv, "{{.Id}}")[:12]
    assert _fetch(eng, n1, f"http://{srv}/file").strip() == "served-by-srv"
    assert eng.wget_from(n1, "http://web/file").stdout.strip() == "served-by-srv"
    assert eng.wget_from(n1, f"http://{short}/file").stdout.strip() == "served-by-srv"
    aliases = eng.inspect(srv, f'{{{{json (index .NetworkSettings.Networks "{n1}").Aliases}}}}')
    assert "web" in aliases and short in aliases, aliases
    resolv = eng.ok("run", "--rm", "--network", n1, "busybox", "cat", "/etc/resolv.conf")
    assert re.findall(r"^nameserver\s+(\S+)", resolv, re.M) == ["127.0.0.11"], resolv
    assert re.search(r"^options ndots:0$", resolv, re.M), resolv
    r = eng.wget_from(n1, "http://no-such-name-here/file")
    assert r.rc != 0 and "served-by-srv" not in r.stdout, r


def test_two_networks_are_isolated(net_engine: NetEngine) -> None:
    eng = net_engine
    n1, n2 = eng.new_network(), eng.new_network()
    eng.ok("network", "create", n1)
    eng.ok("network", "create", n2)
    srv = eng.httpd(body="only-n1", network=n1)
    ip = _net_ip(eng, srv, n1)
    assert _fetch(eng, n1, f"http://{ip}/file").strip() == "only-n1"  # control: reachable from n1
    r = eng.wget_from(n2, f"http://{ip}/file", timeout=2)
    assert r.rc != 0 and "only-n1" not in r.stdout, r
    r = eng.wget_from(n2, f"http://{srv}/file", timeout=2)  # nor is its name known there
    assert r.rc != 0 and "only-n1" not in r.stdout, r
    r = eng.docker("run", "--rm", "busybox", *wget(f"http://{ip}/file", 2))  # nor from the default bridge
    assert r.rc != 0 and "only-n1" not in r.stdout, r


def test_connect_and_disconnect_running_container(net_engine: NetEngine) -> None:
    eng = net_engine
    n1, n2 = eng.new_network(), eng.new_network()
    eng.ok("network", "create", n1)
    eng.ok("network", "create", n2)
    srv = eng.httpd(body="multi-homed", network=n1)
    assert "eth1" not in eng.ok("exec", srv, "ip", "-o", "link")
    assert eng.ok("network", "connect", "--alias", "second", n2, srv) == ""
    links = eng.ok("exec", srv, "ip", "-o", "-4", "addr")
    ip2 = _net_ip(eng, srv, n2)
    assert re.search(rf"\beth1\s+inet {re.escape(ip2)}/", links), links
    assert sorted(eng.ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                         srv).split()) == sorted([n1, n2])
    assert _fetch(eng, n2, f"http://{srv}/file").strip() == "multi-homed"
    assert eng.wget_from(n2, "http://second/file").stdout.strip() == "multi-homed"

    r = eng.docker("network", "connect", n2, srv)
    assert r.rc == 1 and f"endpoint with name {srv} already exists in network {n2}" in r.stderr, r

    assert eng.ok("network", "disconnect", n2, srv) == ""
    assert "eth1" not in eng.ok("exec", srv, "ip", "-o", "link")
    assert eng.inspect(srv, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}").split() == [n1]
    r = eng.wget_from(n2, f"http://{srv}/file", timeout=2)
    assert r.rc != 0 and "multi-homed" not in r.stdout, r
    r = eng.docker("network", "disconnect", n2, srv)
    assert r.rc == 1, r
    cid = eng.inspect(srv, "{{.Id}}")
    assert f"container {cid} is not connected to network {n2}" in r.stderr, r
    assert _fetch(eng, n1, f"http://{srv}/file").strip() == "multi-homed"  # n1 untouched
    r = eng.docker("network", "connect", "host", srv)
    assert r.rc == 1, r
    assert "container cannot be disconnected from host network or connected to host network" in r.stderr, r
    r = eng.docker("network", "connect", "none", srv)
    assert r.rc == 1, r
    assert "container cannot be connected to multiple networks with one of the networks in private (none) " \
           "mode" in r.stderr, r
    r = eng.docker("network", "connect", "--ip", "10.99.99.99", n2, srv)
    assert r.rc == 1, r
    assert "user specified IP address is supported only when connecting to networks with user configured " \
           "subnets" in r.stderr, r
    assert "eth1" not in eng.ok("exec", srv, "ip", "-o", "link")  # nothing half-made


def test_link_on_default_bridge_writes_hosts(net_engine: NetEngine) -> None:
    eng = net_engine
    target = eng.run_d("busybox", "sleep", "300")
    ip, short = eng.inspect(target, "{{.NetworkSettings.IPAddress}}"), eng.inspect(target, "{{.Id}}")[:12]
    c = eng.run_d("--link", f"{target}:db", "busybox", "sleep", "300")
    hosts = eng.ok("exec", c, "cat", "/etc/hosts").splitlines()
    assert f"{ip}\tdb {short} {target}" in hosts, hosts
    env = eng.ok("exec", c, "env")
    assert f"DB_NAME=/{c}/db" in env.splitlines(), env
    assert "/db" in eng.inspect(c, "{{json .HostConfig.Links}}")
    r = eng.docker("run", "--rm", "--link", "no-such-container-x:db", "busybox", "true")
    assert r.rc == 125 and "could not get container for no-such-container-x" in r.stderr, r


def test_link_alias_on_user_network_resolves(net_engine: NetEngine) -> None:
    eng = net_engine
    n1 = eng.new_network()
    eng.ok("network", "create", n1)
    srv = eng.httpd(body="via-link", network=n1)
    assert _fetch(eng, n1, f"http://{srv}/file").strip() == "via-link"
    out = eng.wget_from(n1, "http://backend/file", "--link", f"{srv}:backend")
    assert out.rc == 0 and out.stdout.strip() == "via-link", out
    hosts = eng.ok("run", "--rm", "--network", n1, "--link", f"{srv}:backend", "busybox", "cat", "/etc/hosts")
    assert "backend" not in hosts, hosts  # on user networks links go through DNS, not /etc/hosts
