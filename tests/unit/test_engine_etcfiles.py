"""/etc/hosts and /etc/resolv.conf of a container, with and without network data."""

from __future__ import annotations

from dockyard.engine.daemon.containers.etcfiles import HOSTS_BASE, NetFiles, hosts, resolv_conf

HOST_RESOLV = "search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n"


def test_default_bridge_resolv_filters_loopback() -> None:
    assert resolv_conf({}, False, HOST_RESOLV) == "search corp.example\nnameserver 10.0.0.2\noptions edns0\n"


def test_only_loopback_servers_fall_back_to_public_dns() -> None:
    assert resolv_conf({}, False, "nameserver 127.0.0.53\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_embedded_dns_on_user_network() -> None:
    out = resolv_conf({}, False, HOST_RESOLV, NetFiles(embedded_dns=True))
    assert out == "search corp.example\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
    out = resolv_conf({"DnsOptions": ["ndots:2"], "Dns": ["1.1.1.1"]}, False, HOST_RESOLV, NetFiles(embedded_dns=True))
    assert out == "search corp.example\nnameserver 127.0.0.11\noptions ndots:2\n"


def test_daemon_dns_defaults_and_container_overrides() -> None:
    net = NetFiles(dns=("9.9.9.9",), dns_search=("a.example",), dns_options=("timeout:1",))
    assert resolv_conf({}, False, HOST_RESOLV, net) == "search a.example\nnameserver 9.9.9.9\noptions timeout:1\n"
    hc = {"Dns": ["1.1.1.1"], "DnsSearch": ["b.example"], "DnsOptions": ["attempts:2"]}
    assert resolv_conf(hc, False, HOST_RESOLV, net) == "search b.example\nnameserver 1.1.1.1\noptions attempts:2\n"


def test_hosts_extra_links_then_self() -> None:
    net = NetFiles(entries=(("172.18.0.3", "db 0123456789ab other"), ("172.18.0.2", "web")))
    out = hosts({"ExtraHosts": ["h1:10.1.1.1"]}, "web", False, net)
    assert out == HOSTS_BASE + "10.1.1.1\th1\n172.18.0.3\tdb 0123456789ab other\n172.18.0.2\tweb\n"
