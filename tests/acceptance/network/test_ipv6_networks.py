"""Dual-stack user-defined networks: --ipv6 with an IPv6 subnet, static --ip6, v6 traffic on the bridge."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.network.conftest import NetEngine, wget

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def test_dual_stack_network(net_engine: NetEngine) -> None:
    eng = net_engine
    n = eng.new_network()
    eng.ok("network", "create", "--ipv6", "--subnet", "2001:db8:51::/64", n)
    (doc,) = json.loads(eng.ok("network", "inspect", n))
    assert doc["EnableIPv6"] is True
    subnets = [c["Subnet"] for c in doc["IPAM"]["Config"]]
    assert "2001:db8:51::/64" in subnets and any("." in s for s in subnets), doc["IPAM"]  # + an IPv4 pool
    srv = eng.httpd("--ip6", "2001:db8:51::f00d", body="over-ipv6", network=n)
    ep = json.loads(eng.inspect(srv, "{{json .NetworkSettings.Networks}}"))[n]
    assert ep["GlobalIPv6Address"] == "2001:db8:51::f00d" and ep["GlobalIPv6PrefixLen"] == 64, ep
    assert ep["IPAMConfig"]["IPv6Address"] == "2001:db8:51::f00d" and ep["IPAddress"], ep
    out = eng.ok("exec", srv, "ip", "-6", "-o", "addr", "show", "eth0")
    assert "2001:db8:51::f00d/64" in out, out
    other = eng.run_d("--network", n, "busybox", "sleep", "300")
    ep2 = json.loads(eng.inspect(other, "{{json .NetworkSettings.Networks}}"))[n]
    assert ep2["GlobalIPv6Address"].startswith("2001:db8:51::"), ep2
    got = eng.wait_for("the server over IPv6",
                       lambda: eng.docker("exec", other, *wget("http://[2001:db8:51::f00d]/file")).stdout.strip())
    assert got == "over-ipv6"
    r = eng.docker("run", "--rm", "--network", n, "--ip6", "2001:db8:51::f00d", "busybox", "true")
    assert r.rc != 0 and "Address already in use" in r.stderr, r
    r = eng.docker("run", "--rm", "--network", n, "--ip6", "2001:db8:99::1", "busybox", "true")
    assert r.rc != 0 and "It does not belong to any of this network's subnets" in r.stderr, r
