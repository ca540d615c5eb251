"""dockyardd only: the default bridge's daemon flags (--bridge, --bip, --fixed-cidr, --dns, --mtu).

dockerd's -b only adopts a bridge that exists already; dockyardd makes it. So this runs against a
dockyardd of its own, in its own host namespace, restarted with other flags.
"""

from __future__ import annotations

import json

import pytest

from tests.support.dockyardd import DockyardDaemon
from tests.support.netns_host import NetnsHost

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _ok(d: DockyardDaemon, *args: str) -> str:
    r = d.docker(*args)
    assert r.rc == 0, r
    return r.stdout


def test_bridge_name_bip_fixed_cidr_dns_and_a_new_bip_after_restart() -> None:
    host = NetnsHost(remote=False, subnet_octet=7)
    flags = ("--bridge", "yardbr0", "--bip", "10.123.45.1/24", "--fixed-cidr", "10.123.45.128/25",
             "--dns", "10.250.7.1", "--mtu", "1400")
    d = DockyardDaemon(netns=host.path, extra_args=flags)
    try:
        d.start()
        d.load_busybox()
        out = _ok(d, "run", "--rm", "busybox", "sh", "-c",
                  "ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf; cat /sys/class/net/eth0/mtu")
        assert "inet 10.123.45.129/24" in out and "default via 10.123.45.1" in out, out
        assert "nameserver 10.250.7.1" in out and out.split()[-1] == "1400", out
        (net,) = json.loads(_ok(d, "network", "inspect", "bridge"))
        assert net["IPAM"]["Config"] == [{"Subnet": "10.123.45.0/24", "IPRange": "10.123.45.128/25",
                                          "Gateway": "10.123.45.1"}], net["IPAM"]
        assert net["Options"]["com.docker.network.bridge.name"] == "yardbr0", net["Options"]
        link = host.run("ip", "-4", "-o", "addr", "show", "yardbr0")
        assert "inet 10.123.45.1/24" in link.stdout, link
        d.extra_args = ("--bridge", "yardbr0", "--bip", "10.124.0.1/16")
        d.restart()
        out = _ok(d, "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0")
        assert "inet 10.124.0.2/16" in out, out
        link = host.run("ip", "-4", "-o", "addr", "show", "yardbr0")
        assert "inet 10.124.0.1/16" in link.stdout and "10.123.45.1" not in link.stdout, link
    finally:
        d.stop()
        host.remove()
