"""User-defined bridge networks: create/ls/inspect/filters/rm/prune, IPAM options, Docker's errors."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from tests.acceptance.conftest import errors
from tests.acceptance.network.conftest import NetEngine

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]
_ID = re.compile(r"[0-9a-f]{64}")


def _inspect(eng: NetEngine, name: str) -> dict:
    data = json.loads(eng.ok("network", "inspect", name))
    assert isinstance(data, list) and len(data) == 1, data
    return data[0]


def test_create_inspect_ls_rm(net_engine: NetEngine) -> None:
    eng = net_engine
    n1 = eng.new_network()
    nid = eng.ok("network", "create", n1).strip()
    assert _ID.fullmatch(nid), nid
    net = _inspect(eng, n1)
    assert (net["Name"], net["Id"], net["Driver"], net["Scope"]) == (n1, nid, "bridge", "local")
    assert (net["Internal"], net["Attachable"], net["Ingress"], net["EnableIPv6"]) == (False, False, False, False)
    assert net["IPAM"]["Driver"] == "default"
    [cfg] = net["IPAM"]["Config"]
    subnet = ipaddress.ip_network(cfg["Subnet"])
    assert ipaddress.ip_address(cfg["Gateway"]) in subnet, cfg
    assert net["Containers"] == {} and net["Labels"] == {}, net
    assert _inspect(eng, nid[:12])["Id"] == nid  # by short id too

    rows = eng.ok("network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}").splitlines()
    assert f"{nid} {n1} bridge local" in rows, rows
    names = {r.split()[1]: r.split()[2] for r in rows}
    assert {"bridge": "bridge", "host": "host", "none": "null"}.items() <= names.items(), rows
    header = eng.ok("network", "ls").splitlines()[0].split()
    assert header == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"], header

    c = eng.run_d("--network", n1, "busybox", "sleep", "300")
    cid = eng.inspect(c, "{{.Id}}")
    members = _inspect(eng, n1)["Containers"]
    assert list(members) == [cid], members
    ip = eng.inspect(c, f'{{{{(index .NetworkSettings.Networks "{n1}").IPAddress}}}}')
    assert members[cid]["Name"] == c and members[cid]["IPv4Address"] == f"{ip}/{subnet.prefixlen}", members
    assert ipaddress.ip_address(ip) in subnet
    assert members[cid]["MacAddress"] == eng.ok("exec", c, "cat", "/sys/class/net/eth0/address").strip()

    r = eng.docker("network", "rm", n1)
    assert r.rc == 1, r
    assert f"error while removing network: network {n1} id {nid} has active endpoints" in r.stderr, r
    eng.ok("rm", "-f", c)
    assert eng.ok("network", "rm", n1).strip() == n1
    r = eng.docker("network", "inspect", n1)
    assert r.rc == 1 and f"network {n1} not found" in r.stderr, r


def test_filters_and_labels(net_engine: NetEngine) -> None:
    eng = net_engine
    a, b = eng.new_network(), eng.new_network()
    eng.ok("network", "create", "--label", f"acc={eng.label}", "--label", "tier=front", a)
    eng.ok("network", "create", "--label", f"acc={eng.label}", b)
    assert _inspect(eng, a)["Labels"] == {"acc": eng.label, "tier": "front"}

    def names(*filters: str) -> set[str]:
        args = [x for f in filters for x in ("--filter", f)]
        return set(eng.ok("network", "ls", *args, "--format", "{{.Name}}").split())

    assert names(f"name={a}") == {a}
    assert names(f"label=acc={eng.label}") == {a, b}
    assert names("label=tier=front") == {a}
    assert names("label=tier") == {a}
    assert {a, b} <= names("driver=bridge") and "host" not in names("driver=bridge")
    custom = names("type=custom")
    assert {a, b} <= custom and not {"bridge", "host", "none"} & custom, custom
    assert names("type=builtin") == {"bridge", "host", "none"}
    nid = eng.ok("network", "inspect", "-f", "{{.Id}}", b).strip()
    assert names(f"id={nid}") == {b}
    r = eng.docker("network", "ls", "--filter", "color=red")
    assert r.rc == 1 and "Invalid filter 'color'" in r.stderr, r


def test_prune_removes_only_unused(net_engine: NetEngine) -> None:
    eng = net_engine
    used, unused = eng.new_network(), eng.new_network()
    for n in (used, unused):
        eng.ok("network", "create", "--label", f"acc={eng.label}", n)
    eng.run_d("--network", used, "busybox", "sleep", "300")
    out = eng.ok("network", "prune", "-f", "--filter", f"label=acc={eng.label}")
    assert [line for line in out.splitlines() if line] == ["Deleted Networks:", unused], out
    assert eng.docker("network", "inspect", used).rc == 0
    assert eng.docker("network", "inspect", unused).rc == 1


def test_subnet_gateway_range_aux(net_engine: NetEngine) -> None:
    eng = net_engine
    n = eng.new_network()
    eng.ok("network", "create", "--subnet", "10.201.0.0/24", "--gateway", "10.201.0.1",
           "--ip-range", "10.201.0.128/25", "--aux-address", "reserved=10.201.0.129", n)
    cfg = _inspect(eng, n)["IPAM"]["Config"]
    assert cfg == [{"Subnet": "10.201.0.0/24", "IPRange": "10.201.0.128/25", "Gateway": "10.201.0.1",
                    "AuxiliaryAddresses": {"reserved": "10.201.0.129"}}], cfg
    c = eng.run_d("--network", n, "busybox", "sleep", "300")
    ip = ipaddress.ip_address(eng.inspect(c, f'{{{{(index .NetworkSettings.Networks "{n}").IPAddress}}}}'))
    assert ip in ipaddress.ip_network("10.201.0.128/25") and str(ip) != "10.201.0.129", ip
    assert eng.inspect(c, f'{{{{(index .NetworkSettings.Networks "{n}").Gateway}}}}') == "10.201.0.1"
    bridge = f"br-{_inspect(eng, n)['Id'][:12]}"
    assert "inet 10.201.0.1/24" in eng.ns.run("ip", "-4", "-o", "addr", "show", "dev", bridge).stdout


def test_static_ip_and_its_errors(net_engine: NetEngine) -> None:
    eng = net_engine
    n, plain = eng.new_network(), eng.new_network()
    eng.ok("network", "create", "--subnet", "10.202.0.0/24", n)
    c = eng.run_d("--network", n, "--ip", "10.202.0.10", "busybox", "sleep", "300")
    assert "inet 10.202.0.10/24" in eng.ok("exec", c, "ip", "-4", "-o", "addr", "show", "eth0")
    assert eng.inspect(c, f'{{{{(index .NetworkSettings.Networks "{n}").IPAMConfig.IPv4Address}}}}') == "10.202.0.10"

    r = eng.docker("run", "--rm", "--network", n, "--ip", "10.202.0.10", "busybox", "true")
    assert r.rc == 125 and "Address already in use" in errors(r.stderr), r
    r = eng.docker("run", "--rm", "--network", n, "--ip", "10.203.0.5", "busybox", "true")
    assert r.rc == 125, r
    assert "Invalid address 10.203.0.5: It does not belong to any of this network's subnets" in r.stderr, r
    eng.ok("network", "create", plain)
    r = eng.docker("run", "--rm", "--network", plain, "--ip", "10.203.0.5", "busybox", "true")
    assert r.rc == 125, r
    assert "user specified IP address is supported only when connecting to networks with user configured " \
           "subnets" in r.stderr, r
    assert eng.ok("ps", "-aq", "--filter", f"network={n}").split() == [eng.inspect(c, "{{.Id}}")[:12]]


def test_internal_network_has_no_way_out(net_engine: NetEngine) -> None:
    """A remote host answers a container on a normal network (masqueraded), not one on an internal one."""
    eng = net_engine
    n, normal = eng.new_network(), eng.new_network()
    eng.ok("network", "create", "--internal", "--subnet", "10.204.0.0/24", n)
    eng.ok("network", "create", "--subnet", "10.208.0.0/24", normal)
    assert _inspect(eng, n)["Internal"] is True and _inspect(eng, normal)["Internal"] is False
    url = f"http://{eng.ns.remote_address}:8098/file"
    with eng.ns.serve_remote(8098, "remote-ok"):
        out = eng.wait_for("remote host from a normal network",
                           lambda: eng.wget_from(normal, url).stdout.strip())
        assert out == "remote-ok"
        r = eng.wget_from(n, url, timeout=2)
        assert r.rc != 0 and "remote-ok" not in r.stdout, r
    seen = eng.ns.remote_log()
    assert "10.204.0." not in seen, seen


def test_create_errors(net_engine: NetEngine) -> None:
    eng = net_engine
    n, other = eng.new_network(), eng.new_network()
    eng.ok("network", "create", "--subnet", "10.205.0.0/16", n)
    r = eng.docker("network", "create", n)
    assert r.rc == 1 and f"network with name {n} already exists" in r.stderr, r
    r = eng.docker("network", "create", "--subnet", "10.205.3.0/24", other)
    assert r.rc == 1 and "Pool overlaps with other one on this address space" in r.stderr, r
    r = eng.docker("network", "create", "--subnet", "10.206.0.0/24", "--gateway", "10.207.0.1", other)
    assert r.rc == 1 and "no matching subnet for gateway 10.207.0.1" in r.stderr, r
    r = eng.docker("network", "create", "--driver", "nosuchdriver", other)
    assert r.rc == 1 and "plugin \"nosuchdriver\" not found" in r.stderr, r
    assert eng.docker("network", "inspect", other).rc == 1  # nothing half-made
    missing = f"nosuchnet-{eng.label}"
    r = eng.docker("network", "rm", missing)
    assert r.rc == 1 and f"network {missing} not found" in r.stderr, r
    r = eng.docker("run", "--rm", "--network", missing, "busybox", "true")
    assert r.rc == 125, r  # Docker's own message, not wrapped as an OCI runtime error
    assert errors(r.stderr).splitlines()[0] == f"docker: Error response from daemon: network {missing} not found", r
    c = eng.new_name()  # dockerd 20.10 accepts the create; start is what fails
    assert eng.docker("create", "--name", c, "--network", missing, "busybox").rc == 0
    r = eng.docker("start", c)
    assert r.rc == 1 and f"network {missing} not found" in r.stderr and "OCI runtime" not in r.stderr, r
    r = eng.docker("network", "connect", missing, "nosuchcontainer-x")
    assert r.rc == 1 and "No such container: nosuchcontainer-x" in r.stderr, r
    r = eng.docker("network", "create", "--subnet", "bogus", other)
    assert r.rc == 1 and "Invalid subnet bogus : invalid CIDR address: bogus" in r.stderr, r
    r = eng.docker("network", "create", "--subnet", "10.209.0.0/24", "--ip-range", "10.210.0.0/24", other)
    assert r.rc == 1 and "no matching subnet for range 10.210.0.0/24" in r.stderr, r
    r = eng.docker("network", "rm", "bridge")
    assert r.rc == 1 and "bridge is a pre-defined network and cannot be removed" in r.stderr, r
