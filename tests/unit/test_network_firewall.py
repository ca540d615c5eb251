"""The nft script the firewall module renders: the rules that make ports and bridges work."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import firewall as fw

BR0 = fw.BridgeRule("dockyard0", "172.18.0.0/16")
NET1 = fw.BridgeRule("br-0123456789ab", "172.19.0.0/16")
INTERNAL = fw.BridgeRule("br-internal00", "172.20.0.0/24", internal=True)
NOICC = fw.BridgeRule("br-noicc00000", "172.21.0.0/24", icc=False)
NOMASQ = fw.BridgeRule("br-nomasq0000", "172.22.0.0/24", masquerade=False)
WEB = fw.PortRule("tcp", "", 8080, "172.18.0.2", 80, "dockyard0")
DNS = fw.PortRule("udp", "127.0.0.1", 5353, "172.19.0.3", 53, "br-0123456789ab")


def chain(script: str, name: str) -> list[str]:
    """The rule lines of one chain in a rendered script."""
    lines = script.splitlines()
    start = lines.index(f"\tchain {name} {{")
    end = lines.index("\t}", start)
    return [line.strip() for line in lines[start + 1:end]]


def test_replaces_its_own_table_in_one_script() -> None:
    s = fw.render([BR0], [WEB], table="dyk_test")
    first = s.splitlines()[:3]
    assert first == ["add table ip dyk_test", "delete table ip dyk_test", "table ip dyk_test {"]
    # nothing outside the table: every other statement is nested in it
    assert s.count("table ") == 3
    assert s.rstrip().endswith("}")


def test_hooks_and_priorities() -> None:
    s = fw.render([BR0], [WEB])
    assert chain(s, "prerouting")[0] == "type nat hook prerouting priority dstnat; policy accept;"
    assert chain(s, "output")[0] == "type nat hook output priority -100; policy accept;"
    assert chain(s, "postrouting")[0] == "type nat hook postrouting priority srcnat; policy accept;"
    assert chain(s, "forward")[0] == "type filter hook forward priority filter; policy accept;"


def test_published_ports_dnat_for_local_destinations_from_outside_and_the_host() -> None:
    s = fw.render([BR0, NET1], [WEB, DNS])
    assert chain(s, "prerouting")[1:] == ["fib daddr type local jump ports"]
    assert chain(s, "output")[1:] == ["fib daddr type local jump ports"]
    ports = chain(s, "ports")
    # a specific host IP only matches that address, and comes before any-address rules
    assert ports == [
        "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.19.0.3:53",
        "tcp dport 8080 dnat to 172.18.0.2:80",
    ]


def test_explicit_any_address_is_the_same_as_empty() -> None:
    a = fw.render([BR0], [WEB])
    b = fw.render([BR0], [fw.PortRule("tcp", "0.0.0.0", 8080, "172.18.0.2", 80, "dockyard0")])
    assert a == b


def test_masquerade_outbound_loopback_and_hairpin() -> None:
    post = chain(fw.render([BR0], [WEB]), "postrouting")[1:]
    assert 'oifname != "dockyard0" ip saddr 172.18.0.0/16 masquerade' in post
    assert 'oifname "dockyard0" ct status dnat fib saddr type local masquerade' in post
    assert 'oifname "dockyard0" ip saddr 172.18.0.0/16 ct status dnat masquerade' in post


def test_no_outbound_masquerade_for_internal_or_when_disabled() -> None:
    post = chain(fw.render([INTERNAL, NOMASQ], []), "postrouting")
    assert not [r for r in post if r.startswith("oifname !=")]


def test_forward_isolation_internal_icc() -> None:
    fwd = chain(fw.render([BR0, NET1, INTERNAL, NOICC], [WEB]), "forward")[1:]
    assert 'iifname "br-internal00" oifname != "br-internal00" drop' in fwd
    assert 'oifname "br-internal00" iifname != "br-internal00" drop' in fwd
    assert 'iifname "br-noicc00000" oifname "br-noicc00000" drop' in fwd
    assert not [r for r in fwd if r.startswith('iifname "dockyard0" oifname "dockyard0"')]
    iso = 'iifname "dockyard0" oifname { "br-0123456789ab", "br-internal00", "br-noicc00000" } drop'
    assert iso in fwd
    # replies and published ports are let in before isolation; anything else into a bridge is dropped
    est = fwd.index("oifname @bridges ct state established,related accept")
    dnat = fwd.index("oifname @bridges ct status dnat accept")
    assert est < dnat < fwd.index(iso) < fwd.index("iifname @bridges accept") < fwd.index("oifname @bridges drop")
    assert fwd[-1] == "oifname @bridges drop"
    # internal drops come first: a DNAT'd packet cannot enter an internal bridge
    assert fwd.index('oifname "br-internal00" iifname != "br-internal00" drop') < dnat


def test_bridges_set() -> None:
    s = fw.render([NET1, BR0], [])
    assert 'elements = { "br-0123456789ab", "dockyard0" }' in s
    assert "elements" not in fw.render([], [])
    assert chain(fw.render([], []), "forward")[1:] == []


@pytest.mark.parametrize("bad", [
    lambda: fw.render([fw.BridgeRule('x" drop', "10.0.0.0/8")], []),
    lambda: fw.render([fw.BridgeRule("a-very-long-bridge-name", "10.0.0.0/8")], []),
    lambda: fw.render([fw.BridgeRule("b", "10.0.0.0/33")], []),
    lambda: fw.render([], [fw.PortRule("icmp", "", 1, "10.0.0.2", 1, "b")]),
    lambda: fw.render([], [fw.PortRule("tcp", "::1", 1, "10.0.0.2", 1, "b")]),
    lambda: fw.render([], [fw.PortRule("tcp", "", 0, "10.0.0.2", 1, "b")]),
    lambda: fw.render([], [fw.PortRule("tcp", "", 1, "10.0.0.2", 70000, "b")]),
    lambda: fw.render([], [], table="x; flush ruleset"),
])
def test_refuses_input_that_would_inject_rules(bad) -> None:
    with pytest.raises(InvalidArgument):
        bad()
