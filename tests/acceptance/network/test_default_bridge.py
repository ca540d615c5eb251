"""The default bridge network: addresses, /etc files, inspect, per-container options, Docker's errors."""

from __future__ import annotations

import json
import re

import pytest

from tests.acceptance.conftest import errors
from tests.acceptance.network.conftest import NetEngine

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _host_nameservers() -> list[str]:
    """What Docker puts in a default-bridge container's resolv.conf: the host's non-loopback servers."""
    with open("/etc/resolv.conf") as f:
        servers = [line.split()[1] for line in f if line.startswith("nameserver") and len(line.split()) > 1]
    kept = [s for s in servers if not s.startswith("127.") and s != "::1" and ":" not in s]
    return kept or ["8.8.8.8", "8.8.4.4"]


def test_addresses_and_files_match_inspect(net_engine: NetEngine) -> None:
    eng = net_engine
    c = eng.run_d("busybox", "sleep", "300")
    settings = json.loads(eng.inspect(c, "{{json .NetworkSettings}}"))
    cid = eng.inspect(c, "{{.Id}}")
    ip, gw, mac, plen = settings["IPAddress"], settings["Gateway"], settings["MacAddress"], settings["IPPrefixLen"]
    assert ip and gw and mac and plen, settings
    assert list(settings["Networks"]) == ["bridge"], settings["Networks"]
    bridge = settings["Networks"]["bridge"]
    assert (bridge["IPAddress"], bridge["Gateway"], bridge["MacAddress"], bridge["IPPrefixLen"]) == (ip, gw, mac, plen)
    assert bridge["NetworkID"] == eng.ok("network", "inspect", "-f", "{{.Id}}", "bridge").strip()
    assert bridge["EndpointID"]

    addr = eng.ok("exec", c, "ip", "-4", "-o", "addr")
    assert re.search(r"\blo\s+inet 127\.0\.0\.1/8", addr), addr
    assert re.search(rf"\beth0\s+inet {re.escape(ip)}/{plen}\b", addr), addr
    assert eng.ok("exec", c, "cat", "/sys/class/net/eth0/address").strip() == mac
    assert eng.ok("exec", c, "hostname", "-i").split() == [ip]
    assert eng.ok("exec", c, "hostname").strip() == cid[:12]
    hosts = eng.ok("exec", c, "cat", "/etc/hosts").splitlines()
    assert "127.0.0.1\tlocalhost" in hosts, hosts
    assert f"{ip}\t{cid[:12]}" in hosts, hosts
    resolv = eng.ok("exec", c, "cat", "/etc/resolv.conf")
    servers = re.findall(r"^nameserver\s+(\S+)", resolv, re.M)
    assert servers == _host_nameservers(), resolv  # no embedded DNS on the default bridge
    route = eng.ok("exec", c, "ip", "route")
    assert re.search(rf"^default via {re.escape(gw)} dev eth0", route, re.M), route


def test_gateway_and_host_reach_the_container(net_engine: NetEngine) -> None:
    eng = net_engine
    c = eng.httpd(body="fromhost")
    ip = eng.inspect(c, "{{.NetworkSettings.IPAddress}}")
    gw = eng.inspect(c, "{{.NetworkSettings.Gateway}}")
    assert eng.ok("exec", c, "ping", "-c", "1", "-W", "3", gw).count("1 packets received") == 1
    assert eng.wait_http(f"http://{ip}/file", expect="fromhost").strip() == "fromhost"
    host_addr = eng.ns.run("ip", "-4", "-o", "addr", "show", "dev", eng.default_bridge).stdout
    assert f"inet {gw}/" in host_addr, host_addr


def test_static_ip_refused_on_default_bridge(net_engine: NetEngine) -> None:
    eng = net_engine
    r = eng.docker("run", "--rm", "--ip", "172.17.0.200", "busybox", "true")
    assert r.rc == 125, r
    assert "user specified IP address is supported on user defined networks only" in errors(r.stderr), r


def test_mac_hosts_dns_options_hostname(net_engine: NetEngine) -> None:
    eng = net_engine
    out = eng.ok("run", "--rm", "--mac-address", "02:42:ac:11:ff:01", "--add-host", "db.example:10.1.2.3",
                 "--add-host", "cache:10.1.2.4", "--dns", "10.9.9.9", "--dns-search", "corp.example",
                 "--dns-option", "ndots:3", "--hostname", "webhost", "busybox", "sh", "-c",
                 "cat /sys/class/net/eth0/address; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf;"
                 " echo ---; hostname; cat /etc/hostname", cli="20.10")  # CLI 28 sends --mac-address
    # per network, which needs API 1.44: against dockerd 20.10 (API 1.41) it refuses, so use CLI 20.10
    mac, hosts, resolv, names = out.split("---\n")
    assert mac.strip() == "02:42:ac:11:ff:01"
    lines = hosts.splitlines()
    assert "10.1.2.3\tdb.example" in lines and "10.1.2.4\tcache" in lines, hosts
    assert any(re.fullmatch(r"\d+\.\d+\.\d+\.\d+\twebhost", line) for line in lines), hosts
    assert re.findall(r"^nameserver\s+(\S+)", resolv, re.M) == ["10.9.9.9"], resolv
    assert re.search(r"^search corp\.example$", resolv, re.M), resolv
    assert re.search(r"^options ndots:3$", resolv, re.M), resolv
    assert names.split() == ["webhost", "webhost"]


def test_invalid_mac_address(net_engine: NetEngine) -> None:
    r = net_engine.docker("run", "--rm", "--mac-address", "nope", "busybox", "true", cli="20.10")
    assert r.rc == 125, r
    assert "nope is not a valid mac address" in r.stderr, r
